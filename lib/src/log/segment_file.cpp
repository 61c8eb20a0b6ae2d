// Appends to one segment through the Env seam.
#include "log/segment_file.hpp"

#include "log/segment_reader.hpp"

namespace mqkit::detail::log {

int SegmentFile::create(Env& env, const std::string& path, bool durable,
                        std::unique_ptr<SegmentFile>& out) {
  std::unique_ptr<File> file;
  if (const int err = env.open(path, OpenMode::create_truncate, file); err != 0) return err;
  const std::uint32_t salt = new_salt();
  char header[kSegmentHeaderSize];
  write_segment_header(header, salt);
  int err = write_all(*file, 0, std::string_view(header, sizeof header));
  if (err == 0 && durable) err = file->sync();
  if (err == 0 && durable) err = env.sync_dir(parent_of(path));
  if (err != 0) {
    file.reset();
    (void)env.unlink(path);
    return err;
  }
  out.reset(new SegmentFile(std::move(file), path, kSegmentHeaderSize, crc_seed(salt)));
  return 0;
}

int SegmentFile::open(Env& env, const std::string& path, std::uint64_t size, std::uint32_t seed,
                      std::unique_ptr<SegmentFile>& out) {
  std::unique_ptr<File> file;
  if (const int err = env.open(path, OpenMode::read_write, file); err != 0) return err;
  out.reset(new SegmentFile(std::move(file), path, size, seed));
  return 0;
}

int SegmentFile::append(std::string_view bytes) {
  const int err = write_all(*file_, size_, bytes);
  if (err != 0) {
    (void)discard_after(size_);  // nothing of a failed append stays
    return err;
  }
  size_ += bytes.size();
  return 0;
}

int SegmentFile::discard_after(std::uint64_t size) {
  if (file_->truncate(size) == 0) return 0;
  // The cut failed: overwrite what is there with zeros instead (that needs
  // no new space), which never read as a record, so nothing reported failed
  // is recovered later.
  std::uint64_t end = 0;
  if (const int err = file_->size(end); err != 0) return err;
  if (end <= size) return 0;
  return write_all(*file_, size, std::string(end - size, '\0'));
}

int SegmentFile::sync() {
  return file_->sync();
}

int SegmentFile::cut_to(std::uint64_t size) {
  size_ = size;
  if (const int err = discard_after(size); err != 0) return err;
  return file_->sync();
}

}  // namespace mqkit::detail::log
