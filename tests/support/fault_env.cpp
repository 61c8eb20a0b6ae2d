// The fault-injecting Env.
#include "fault_env.hpp"

#include <cerrno>
#include <thread>

namespace mqkit::test {

using detail::log::File;
using detail::log::OpenMode;

// A file opened through a FaultEnv: every call is decided by the env first.
class FaultFile final : public File {
 public:
  FaultFile(FaultEnv& env, std::string path, std::unique_ptr<File> real)
      : env_(env), path_(std::move(path)), real_(std::move(real)) {}

  int read_at(std::uint64_t offset, char* out, std::size_t n, std::size_t& got) override {
    std::lock_guard l(env_.mutex_);
    int error = 0;
    if (env_.decide(FaultEnv::Op::read, path_, error) != FaultEnv::Verdict::pass) return error;
    return real_->read_at(offset, out, n, got);
  }

  int write_at(std::uint64_t offset, const char* data, std::size_t n, std::size_t& wrote) override {
    std::chrono::milliseconds delay;
    {
      std::lock_guard l(env_.mutex_);
      delay = env_.write_delay_;
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    std::lock_guard l(env_.mutex_);
    int error = 0;
    const auto verdict = env_.decide(FaultEnv::Op::write, path_, error);
    if (verdict == FaultEnv::Verdict::fail) return error;
    const bool cut_short = verdict == FaultEnv::Verdict::cut_short;
    if (cut_short && n >= 2) n /= 2;  // one byte goes whole
    auto& t = env_.files_[path_];
    if (env_.free_) {
      const std::uint64_t growth = offset + n > t.size ? offset + n - t.size : 0;
      if (growth > *env_.free_) {
        // One fault per call in the counts: a write already cut short is
        // counted as that, whatever the full disk does to it next.
        if (!cut_short) env_.count("enospc");
        const std::uint64_t cut = growth - *env_.free_;
        if (cut >= n) return ENOSPC;
        n -= static_cast<std::size_t>(cut);  // a short write up to the last free byte
      }
    }
    if (const int err = real_->write_at(offset, data, n, wrote); err != 0) return err;
    const std::uint64_t end = offset + wrote;
    if (end > t.size) {
      if (env_.free_) *env_.free_ -= end - t.size;
      t.size = end;
    }
    return 0;
  }

  int sync() override {
    std::chrono::milliseconds delay;
    {
      std::lock_guard l(env_.mutex_);
      delay = env_.sync_delay_;
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    std::lock_guard l(env_.mutex_);
    int error = 0;
    if (env_.decide(FaultEnv::Op::sync, path_, error) != FaultEnv::Verdict::pass) return error;
    if (const int err = real_->sync(); err != 0) return err;
    auto& t = env_.files_[path_];
    t.synced = t.size;
    return 0;
  }

  int truncate(std::uint64_t size) override {
    std::lock_guard l(env_.mutex_);
    int error = 0;
    if (env_.decide(FaultEnv::Op::truncate, path_, error) != FaultEnv::Verdict::pass) return error;
    if (const int err = real_->truncate(size); err != 0) return err;
    auto& t = env_.files_[path_];
    if (env_.free_ && size < t.size) *env_.free_ += t.size - size;
    if (env_.free_ && size > t.size) *env_.free_ -= std::min(*env_.free_, size - t.size);
    t.size = size;
    t.synced = std::min(t.synced, size);
    return 0;
  }

  int allocate(std::uint64_t size) override {
    std::lock_guard l(env_.mutex_);
    int error = 0;
    if (env_.decide(FaultEnv::Op::write, path_, error) != FaultEnv::Verdict::pass) return error;
    auto& t = env_.files_[path_];
    const std::uint64_t growth = size > t.size ? size - t.size : 0;
    if (env_.free_ && growth > *env_.free_) {
      env_.count("enospc");
      return ENOSPC;
    }
    if (const int err = real_->allocate(size); err != 0) return err;
    if (env_.free_) *env_.free_ -= growth;
    t.size = std::max(t.size, size);
    t.synced = t.size;  // fallocate'd space is there after a crash, as far as these tests go
    return 0;
  }

  int size(std::uint64_t& out) override {
    std::lock_guard l(env_.mutex_);
    if (env_.dead_) return EIO;
    return real_->size(out);
  }

 private:
  FaultEnv& env_;
  std::string path_;
  std::unique_ptr<File> real_;
};

void FaultEnv::inject(const Fault& fault) {
  std::lock_guard l(mutex_);
  faults_.push_back(fault);
  seen_.push_back(0);
}

void FaultEnv::clear_faults() {
  std::lock_guard l(mutex_);
  faults_.clear();
  seen_.clear();
  random_.reset();
}

void FaultEnv::randomize(std::uint32_t seed, std::uint32_t one_in) {
  std::lock_guard l(mutex_);
  random_.emplace(seed);
  one_in_ = one_in;
}

void FaultEnv::set_sync_delay(std::chrono::milliseconds delay) {
  std::lock_guard l(mutex_);
  sync_delay_ = delay;
}

void FaultEnv::set_write_delay(std::chrono::milliseconds delay) {
  std::lock_guard l(mutex_);
  write_delay_ = delay;
}

void FaultEnv::set_free_space(std::optional<std::uint64_t> bytes) {
  std::lock_guard l(mutex_);
  free_ = bytes;
}

std::optional<std::uint64_t> FaultEnv::free_space() const {
  std::lock_guard l(mutex_);
  return free_;
}

std::uint64_t FaultEnv::calls(Op op) const {
  std::lock_guard l(mutex_);
  auto it = calls_.find(op);
  return it == calls_.end() ? 0 : it->second;
}

std::uint64_t FaultEnv::injected() const {
  std::lock_guard l(mutex_);
  return injected_;
}

std::map<std::string, std::uint64_t> FaultEnv::injected_by_kind() const {
  std::lock_guard l(mutex_);
  return by_kind_;
}

namespace {
std::string op_name(FaultEnv::Op op) {
  switch (op) {
    case FaultEnv::Op::open:
      return "open";
    case FaultEnv::Op::read:
      return "read";
    case FaultEnv::Op::write:
      return "write";
    case FaultEnv::Op::sync:
      return "sync";
    case FaultEnv::Op::truncate:
      return "truncate";
    case FaultEnv::Op::unlink:
      return "unlink";
    case FaultEnv::Op::rename:
      return "rename";
    case FaultEnv::Op::sync_dir:
      return "sync_dir";
    case FaultEnv::Op::list:
      return "list";
  }
  return "?";
}
}  // namespace

FaultEnv::Verdict FaultEnv::decide(Op op, const std::string& path, int& error) {
  ++calls_[op];
  if (dead_) {
    error = EIO;
    return Verdict::fail;
  }
  for (std::size_t i = 0; i < faults_.size(); ++i) {
    const Fault& f = faults_[i];
    if (f.op != op || path.find(f.path_part) == std::string::npos) continue;
    const int n = seen_[i]++;
    if (n < f.skip || (f.times >= 0 && n >= f.skip + f.times)) continue;
    error = f.error;
    const bool cut = f.short_write && op == Op::write;
    count(cut ? "short_write" : f.error == ENOSPC ? "enospc" : "fault_" + op_name(op));
    return cut ? Verdict::cut_short : Verdict::fail;
  }
  if (random_ && one_in_ > 0 && (op == Op::read || op == Op::write || op == Op::sync) &&
      (*random_)() % one_in_ == 0) {
    error = EIO;
    const bool cut = op == Op::write && (*random_)() % 2 == 0;
    count(cut ? "short_write" : "eio_" + op_name(op));
    return cut ? Verdict::cut_short : Verdict::fail;
  }
  return Verdict::pass;
}

int FaultEnv::open(const std::string& path, OpenMode mode, std::unique_ptr<File>& out) {
  std::lock_guard l(mutex_);
  int error = 0;
  if (decide(Op::open, path, error) != Verdict::pass) return error;
  std::unique_ptr<File> real;
  std::unique_ptr<File> probe;
  const bool existed = real_.open(path, OpenMode::read_only, probe) == 0;
  probe.reset();
  if (const int err = real_.open(path, mode, real); err != 0) return err;
  auto it = files_.find(path);
  if (it == files_.end() || !existed) {
    Tracked t;
    if (existed) (void)real->size(t.size);  // there before: durable as it is
    t.synced = t.size;
    t.entry_unsynced = !existed;
    it = files_.insert_or_assign(path, t).first;
  }
  if (mode == OpenMode::create_truncate) {
    if (free_) *free_ += it->second.size;
    it->second.size = 0;
    it->second.synced = 0;
  }
  out = std::make_unique<FaultFile>(*this, path, std::move(real));
  return 0;
}

int FaultEnv::unlink(const std::string& path) {
  std::lock_guard l(mutex_);
  int error = 0;
  if (decide(Op::unlink, path, error) != Verdict::pass) return error;
  std::uint64_t size = 0;
  if (auto it = files_.find(path); it != files_.end()) {
    size = it->second.size;
    files_.erase(it);
  }
  if (const int err = real_.unlink(path); err != 0) return err;
  if (free_) *free_ += size;
  return 0;
}

int FaultEnv::rename(const std::string& from, const std::string& to) {
  std::lock_guard l(mutex_);
  int error = 0;
  if (decide(Op::rename, from, error) != Verdict::pass) return error;
  if (const int err = real_.rename(from, to); err != 0) return err;
  if (auto it = files_.find(from); it != files_.end()) {
    Tracked t = it->second;
    t.entry_unsynced = true;
    files_.erase(it);
    files_[to] = t;
  }
  return 0;
}

int FaultEnv::make_dir(const std::string& path) {
  std::lock_guard l(mutex_);
  int error = 0;
  if (decide(Op::open, path, error) != Verdict::pass) return error;
  return real_.make_dir(path);
}

int FaultEnv::sync_dir(const std::string& dir) {
  std::lock_guard l(mutex_);
  int error = 0;
  if (decide(Op::sync_dir, dir, error) != Verdict::pass) return error;
  if (const int err = real_.sync_dir(dir); err != 0) return err;
  for (auto& [path, t] : files_)
    if (detail::log::parent_of(path) == dir) t.entry_unsynced = false;
  return 0;
}

int FaultEnv::list_dir(const std::string& dir, std::vector<std::string>& names) {
  std::lock_guard l(mutex_);
  int error = 0;
  if (decide(Op::list, dir, error) != Verdict::pass) return error;
  return real_.list_dir(dir, names);
}

void FaultEnv::power_loss(bool torn, std::uint32_t seed) {
  std::lock_guard l(mutex_);
  dead_ = true;
  std::mt19937 random(seed);
  for (const auto& [path, t] : files_) {
    if (t.entry_unsynced) {
      (void)real_.unlink(path);  // its directory entry never reached the disk
      continue;
    }
    std::uint64_t keep = t.synced;
    if (torn && t.size > t.synced) keep += random() % (t.size - t.synced + 1);
    std::unique_ptr<File> file;
    if (real_.open(path, OpenMode::read_write, file) == 0) (void)file->truncate(keep);
  }
  files_.clear();
}

}  // namespace mqkit::test
