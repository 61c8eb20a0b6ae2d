// AppliedLog: a service's record of the orders it applied, the way a real
// service keeps it: an append-only file of one line per order
// ("ORD-000042 attempt 1 DETAIL") with an in-memory index of the ids, shared
// by the group's workers (processes) under flock. Appending is O(1); each
// worker reads only the lines the others appended since it last looked.
//
// It makes a handler idempotent on top of at-least-once delivery: an order
// that is already in the log is not applied again (a redelivery after a
// crash, a lost ack). sync() makes the appended lines durable; the services
// call it once per batch of acks (ReliableConsumer::on_before_ack), so an
// order is acked only after its line is on disk.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_set>

namespace ecommerce {

class AppliedLog {
 public:
  // Called for every line in the log, in order, before apply() decides:
  // the place to fold a line's DETAIL into the service's state (stock).
  using OnLine = std::function<void(const std::string& id, const std::string& detail)>;

  explicit AppliedLog(const std::string& path, OnLine on_line = {});
  ~AppliedLog();
  AppliedLog(const AppliedLog&) = delete;
  AppliedLog& operator=(const AppliedLog&) = delete;

  // Under the group's lock: reads what the other workers appended; when `id`
  // is not in the log yet, runs `work` (which may throw to refuse the order)
  // and appends "ID attempt N DETAIL" with the DETAIL `work` returned.
  // Returns false when the order had been applied before (nothing ran).
  bool apply(const std::string& id, std::uint32_t attempt,
             const std::function<std::string()>& work);

  // fdatasync: everything appended so far survives a crash.
  void sync();

  std::size_t size() const noexcept { return ids_.size(); }

 private:
  void catch_up();  // fold the lines appended since `read_to_`

  std::string path_;
  int fd_ = -1;
  OnLine on_line_;
  std::unordered_set<std::string> ids_;
  std::uint64_t read_to_ = 0;
  bool dirty_ = false;
};

// One applied.log read from outside (the order service's summary): distinct
// order ids, and how many of them needed more than one attempt.
struct AppliedSummary {
  std::size_t orders = 0;
  std::size_t retried = 0;
  bool exists = false;
};
AppliedSummary summarize_applied_log(const std::string& path);

}  // namespace ecommerce
