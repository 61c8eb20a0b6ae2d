// The production Env (plain syscalls) and the helpers over the seam.
#include "log/env.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace mqkit::detail::log {
namespace {

class PosixFile final : public File {
 public:
  explicit PosixFile(int fd) : fd_(fd) {}
  ~PosixFile() override { ::close(fd_); }
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  int read_at(std::uint64_t offset, char* out, std::size_t n, std::size_t& got) override {
    for (;;) {
      const ssize_t r = ::pread(fd_, out, n, static_cast<off_t>(offset));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return errno;
      got = static_cast<std::size_t>(r);
      return 0;
    }
  }
  int write_at(std::uint64_t offset, const char* data, std::size_t n, std::size_t& wrote) override {
    for (;;) {
      const ssize_t r = ::pwrite(fd_, data, n, static_cast<off_t>(offset));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return errno;
      wrote = static_cast<std::size_t>(r);
      return 0;
    }
  }
  int sync() override { return ::fdatasync(fd_) == 0 ? 0 : errno; }
  int truncate(std::uint64_t size) override {
    return ::ftruncate(fd_, static_cast<off_t>(size)) == 0 ? 0 : errno;
  }
  int allocate(std::uint64_t size) override {
    return ::posix_fallocate(fd_, 0, static_cast<off_t>(size));
  }
  int size(std::uint64_t& out) override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return errno;
    out = static_cast<std::uint64_t>(st.st_size);
    return 0;
  }

 private:
  int fd_;
};

class PosixEnv final : public Env {
 public:
  int open(const std::string& path, OpenMode mode, std::unique_ptr<File>& out) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case OpenMode::read_only:
        flags |= O_RDONLY;
        break;
      case OpenMode::read_write:
        flags |= O_RDWR;
        break;
      case OpenMode::create:
        flags |= O_RDWR | O_CREAT;
        break;
      case OpenMode::create_truncate:
        flags |= O_RDWR | O_CREAT | O_TRUNC;
        break;
    }
    const int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return errno;
    out = std::make_unique<PosixFile>(fd);
    return 0;
  }
  int unlink(const std::string& path) override { return ::unlink(path.c_str()) == 0 ? 0 : errno; }
  int rename(const std::string& from, const std::string& to) override {
    return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
  }
  int make_dir(const std::string& path) override {
    return ::mkdir(path.c_str(), 0755) == 0 ? 0 : errno;
  }
  int sync_dir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    const int err = ::fsync(fd) == 0 ? 0 : errno;
    ::close(fd);
    return err;
  }
  int list_dir(const std::string& dir, std::vector<std::string>& names) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return errno;
    names.clear();
    errno = 0;
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    const int err = errno;
    ::closedir(d);
    return err;
  }
};

}  // namespace

Env& Env::posix() {
  static PosixEnv env;
  return env;
}

int write_all(File& file, std::uint64_t offset, std::string_view data) {
  while (!data.empty()) {
    std::size_t wrote = 0;
    if (const int err = file.write_at(offset, data.data(), data.size(), wrote); err != 0)
      return err;
    if (wrote == 0) return EIO;
    data.remove_prefix(wrote);
    offset += wrote;
  }
  return 0;
}

int read_exact(File& file, std::uint64_t offset, char* out, std::size_t n) {
  while (n > 0) {
    std::size_t got = 0;
    if (const int err = file.read_at(offset, out, n, got); err != 0) return err;
    if (got == 0) return EIO;  // shorter than the index says
    out += got;
    n -= got;
    offset += got;
  }
  return 0;
}

int read_whole(Env& env, const std::string& path, std::string& out) {
  std::unique_ptr<File> file;
  if (const int err = env.open(path, OpenMode::read_only, file); err != 0) return err;
  std::uint64_t size = 0;
  if (const int err = file->size(size); err != 0) return err;
  out.resize(size);
  std::size_t done = 0;
  while (done < size) {
    std::size_t got = 0;
    if (const int err = file->read_at(done, out.data() + done, size - done, got); err != 0)
      return err;
    if (got == 0) break;  // shrank meanwhile
    done += got;
  }
  out.resize(done);
  return 0;
}

std::string parent_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

int make_dirs(Env& env, const std::string& path) {
  std::string dir = path;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (dir.empty() || dir == "/" || dir == ".") return 0;
  const int err = env.make_dir(dir);
  if (err == 0) return env.sync_dir(parent_of(dir));
  if (err == EEXIST) return 0;
  if (err != ENOENT) return err;
  if (const int parent = make_dirs(env, parent_of(dir)); parent != 0) return parent;
  if (const int again = env.make_dir(dir); again != 0 && again != EEXIST) return again;
  return env.sync_dir(parent_of(dir));
}

int atomic_replace(Env& env, const std::string& path, std::string_view data) {
  const std::string temp = path + ".tmp";
  std::unique_ptr<File> file;
  int err = env.open(temp, OpenMode::create_truncate, file);
  if (err == 0) err = write_all(*file, 0, data);
  if (err == 0) err = file->sync();
  file.reset();
  if (err == 0) err = env.rename(temp, path);
  if (err != 0) {
    (void)env.unlink(temp);
    return err;
  }
  return env.sync_dir(parent_of(path));
}

}  // namespace mqkit::detail::log
