// FaultEnv: the test implementation of the storage seam (lib/src/log/env.hpp).
// It passes every call to the real file system and can, on chosen calls or
// at random from a seed, make them fail the way disks do:
//   * a slow fdatasync (a delay before each sync), a slow write;
//   * a full disk: ENOSPC once the files have grown by N more bytes (a
//     write that crosses the limit is short, as the kernel's is); truncating
//     or deleting files gives space back;
//   * EIO on a read, a write or a sync; short writes;
//   * a power loss: every byte not yet synced is dropped (or, torn, a random
//     prefix of them is kept), files whose directory was never synced since
//     their creation vanish, and every later call fails with EIO, so the
//     code under test can be destroyed without touching the disk again.
// Synced state is tracked per path for the files opened through it, which
// the logs only ever append to and truncate. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "log/env.hpp"

namespace mqkit::test {

class FaultEnv final : public detail::log::Env {
 public:
  enum class Op { open, read, write, sync, truncate, unlink, rename, sync_dir, list };

  // One planned fault: the (skip+1)-th call of `op` on a path containing
  // `path_part` fails with `error` (or, for a write, is cut short when
  // `short_write`), and so do the next `times - 1` matching calls.
  struct Fault {
    Op op = Op::write;
    int error = EIO;
    bool short_write = false;
    std::string path_part;
    int skip = 0;
    int times = 1;  // -1: every matching call from then on
  };

  FaultEnv() = default;

  void inject(const Fault& fault);
  void clear_faults();
  // Random faults from `seed`: each read, write and sync fails with EIO (a
  // write is short instead, half of the time) with probability 1/one_in.
  void randomize(std::uint32_t seed, std::uint32_t one_in);
  void set_sync_delay(std::chrono::milliseconds delay);
  // A delay before each write (a slow disk, or a test holding a writer mid-batch).
  void set_write_delay(std::chrono::milliseconds delay);
  // ENOSPC once files have grown by `bytes` more; nullopt: no limit.
  void set_free_space(std::optional<std::uint64_t> bytes);
  std::optional<std::uint64_t> free_space() const;

  // The power goes out now. With `torn`, each file keeps a random prefix
  // (from `seed`) of its unsynced bytes instead of none.
  void power_loss(bool torn = false, std::uint32_t seed = 1);

  std::uint64_t calls(Op op) const;
  std::uint64_t injected() const;  // faults given so far, of every kind
  // The same, by kind: eio_read, eio_write, eio_sync, short_write, enospc,
  // and the other errors of planned faults as fault_<op>.
  std::map<std::string, std::uint64_t> injected_by_kind() const;

  int open(const std::string& path, detail::log::OpenMode mode,
           std::unique_ptr<detail::log::File>& out) override;
  int unlink(const std::string& path) override;
  int rename(const std::string& from, const std::string& to) override;
  int make_dir(const std::string& path) override;
  int sync_dir(const std::string& dir) override;
  int list_dir(const std::string& dir, std::vector<std::string>& names) override;

 private:
  friend class FaultFile;
  struct Tracked {
    std::uint64_t size = 0;
    std::uint64_t synced = 0;
    bool entry_unsynced = false;  // created since its directory was last synced
  };
  enum class Verdict { pass, fail, cut_short };
  // Decides one call (under mutex_).
  Verdict decide(Op op, const std::string& path, int& error);

  mutable std::mutex mutex_;
  detail::log::Env& real_ = detail::log::Env::posix();
  std::vector<Fault> faults_;
  std::vector<int> seen_;  // matching calls seen, per fault
  std::optional<std::mt19937> random_;
  std::uint32_t one_in_ = 0;
  std::chrono::milliseconds sync_delay_{0};
  std::chrono::milliseconds write_delay_{0};
  std::optional<std::uint64_t> free_;
  bool dead_ = false;
  std::map<std::string, Tracked> files_;
  std::map<Op, std::uint64_t> calls_;
  std::uint64_t injected_ = 0;
  std::map<std::string, std::uint64_t> by_kind_;
  void count(const std::string& kind) {  // under mutex_
    ++injected_;
    ++by_kind_[kind];
  }
};

}  // namespace mqkit::test
