// Env: the one seam under every file the segment logs (spool, stream log)
// touch. Production code uses Env::posix(), plain syscalls; tests pass a
// fault-injecting Env (tests/support/fault_env.hpp) that can make a sync
// slow, the disk full, a write short or failing, and a power loss drop
// every byte not yet synced. Calls are per batch, not per record, so the
// virtual call costs nothing measurable. Errors are errno values (0: done),
// as the syscalls give them; the callers turn them into Error or results.
// The idea follows LevelDB's Env; the interface is ours.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mqkit::detail::log {

class File {
 public:
  virtual ~File() = default;
  // One pread: `got` bytes read (fewer at the end of the file).
  virtual int read_at(std::uint64_t offset, char* out, std::size_t n, std::size_t& got) = 0;
  // One pwrite: `wrote` may be fewer than n (a short write).
  virtual int write_at(std::uint64_t offset, const char* data, std::size_t n,
                       std::size_t& wrote) = 0;
  virtual int sync() = 0;  // fdatasync
  virtual int truncate(std::uint64_t size) = 0;
  virtual int allocate(std::uint64_t size) = 0;  // posix_fallocate from 0
  virtual int size(std::uint64_t& out) = 0;
};

enum class OpenMode {
  read_only,
  read_write,       // an existing file
  create,           // read-write, created if missing, kept if present
  create_truncate,  // read-write, created or emptied
};

class Env {
 public:
  virtual ~Env() = default;
  virtual int open(const std::string& path, OpenMode mode, std::unique_ptr<File>& out) = 0;
  virtual int unlink(const std::string& path) = 0;
  virtual int rename(const std::string& from, const std::string& to) = 0;
  virtual int make_dir(const std::string& path) = 0;  // EEXIST when it is there
  virtual int sync_dir(const std::string& dir) = 0;   // fsync of the directory itself
  virtual int list_dir(const std::string& dir, std::vector<std::string>& names) = 0;

  // The real file system.
  static Env& posix();
};

// Helpers over the seam. Each returns 0 or an errno.

// Writes all of `data` at `offset`, continuing after short writes.
int write_all(File& file, std::uint64_t offset, std::string_view data);
// Reads exactly n bytes at `offset` (EIO when the file is shorter).
int read_exact(File& file, std::uint64_t offset, char* out, std::size_t n);
// Reads the whole file into `out`.
int read_whole(Env& env, const std::string& path, std::string& out);
// Creates `dir` and its missing parents, syncing each parent that gained an
// entry, so a new directory survives a power loss.
int make_dirs(Env& env, const std::string& dir);
// Replaces `path` with `data` atomically: write a temporary, sync it, rename
// over, sync the directory.
int atomic_replace(Env& env, const std::string& path, std::string_view data);
// The directory part of `path` ("." for a bare name).
std::string parent_of(const std::string& path);

}  // namespace mqkit::detail::log
