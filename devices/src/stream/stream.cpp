// StreamPump: the stream device's loop turn. One thread owns the pieces and
// moves events between them: PUBLISHes from the front socket into the group
// commit (GroupCommit: every PUBLISH read in one turn goes to its
// partition's log in one write, and one fdatasync under `always`, before any
// of them is confirmed), readers' commands from the back socket to Readers,
// then RecordsDelivery, then the timers (heartbeats, saving the committed
// positions, retention).
#include "mqkit/devices/stream.hpp"

#include <algorithm>
#include <mutex>

#include "detail/counter.hpp"
#include "protocol/commands.hpp"
#include "publish_intake.hpp"
#include "pump.hpp"
#include "router_peers.hpp"
#include "stream/committed_positions.hpp"
#include "stream/group_commit.hpp"
#include "stream/partitions.hpp"
#include "stream/readers.hpp"
#include "stream/recent_ids.hpp"
#include "stream/records_delivery.hpp"
#include "wire/socket.hpp"

namespace mqkit::devices {
namespace {

using namespace mqkit::detail::protocol;
using Clock = std::chrono::steady_clock;
namespace md = mqkit::detail;

constexpr auto kRetentionEvery = std::chrono::seconds(1);

using detail::reply_error;
using detail::view;

class StreamPump final : public detail::Pump, private detail::PublishSink {
 public:
  explicit StreamPump(const StreamOptions& o)
      : options_(with_heartbeat(o)),
        front_(md::open_socket(zmq::socket_type::router, o.socket)),
        back_(md::open_socket(zmq::socket_type::router, o.socket)),
        partitions_(o.dir, o.partitions, o.log),
        positions_(o.dir),
        intake_(o.dedup_window, o.socket.limits),
        group_commit_(partitions_, o.log),
        readers_(detail::RouterPeers(back_), partitions_, positions_, options_.heartbeat),
        delivery_(detail::RouterPeers(back_), readers_, partitions_, positions_) {
    back_.set(zmq::sockopt::router_mandatory, true);  // a gone reader is an error, not a drop
    back_.set(zmq::sockopt::sndhwm, 0);               // credit bounds what each reader holds
    // A restarted stream still answers `duplicate` to re-sends of records it
    // stored just before it stopped.
    const auto newest_first = detail::newest_ids(partitions_, o.dedup_window, o.socket.limits);
    for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) intake_.remember(*it);
    front_endpoint_ = md::attach(front_, bind(o.front));
    back_endpoint_ = md::attach(back_, bind(o.back));
    next_heartbeat_ = Clock::now() + options_.heartbeat;
    next_retention_ = Clock::now();
    refresh_counters();
  }

  ~StreamPump() override {
    try {
      // The loop has stopped: commits that readers sent just before still
      // count (a clean stop loses no position).
      for (int i = 0; i < 1024 && read_back(); ++i) {
      }
      positions_.save(/*force=*/true);
    } catch (...) {
      // Positions are an at-least-once hint: the older file stands.
    }
  }

  const char* kind() const noexcept override { return "stream"; }
  std::string in_endpoint() const override { return front_endpoint_; }
  std::string out_endpoint() const override { return back_endpoint_; }
  std::vector<zmq::socket_t*> bound_sockets() override { return {&front_, &back_}; }

  void announce_admin_endpoint(const std::string& endpoint) {
    partitions_.announce_admin_endpoint(endpoint);
  }

  std::size_t poll_items(zmq::pollitem_t* items) override {
    items[0] = {front_.handle(), 0, ZMQ_POLLIN, 0};
    items[1] = {back_.handle(), 0, ZMQ_POLLIN, 0};
    return 2;
  }

  std::chrono::milliseconds poll_timeout() const override {
    auto next = std::min(next_heartbeat_, next_retention_);
    if (positions_.dirty()) next = std::min(next, positions_.save_at());
    // Under interval=D an idle device still syncs what it wrote within D.
    if (options_.log.durability == Durability::interval)
      next = std::min(next, Clock::now() + options_.log.sync_interval);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
    return std::max(left + std::chrono::milliseconds(1), std::chrono::milliseconds(0));
  }

  void pump(const zmq::pollitem_t*) override {
    for (int i = 0; i < 256 && intake_.read(front_, *this); ++i) {
    }
    group_commit_.append(intake_);
    group_commit_.sync_due();
    intake_.end_turn(front_);
    for (int i = 0; i < 1024 && read_back(); ++i) {
    }
    readers_.settle();
    delivery_.deliver_all();
    run_timers();
    if (Clock::now() >= next_snapshot_) refresh_counters();
  }

  Counters counters() const override {
    Counters out{{"partitions", partitions_.count()},
                 {"published", intake_.published().get()},
                 {"appended", group_commit_.appended().get()},
                 {"duplicate", intake_.duplicates().get()},
                 {"rejected", intake_.rejected().get()},
                 {"malformed", malformed_.get() + intake_.malformed().get()},
                 {"delivered", delivery_.delivered().get()},
                 {"position_resets", delivery_.position_resets().get()},
                 {"lost_readers", readers_.lost().get()},
                 {"retention_deleted", partitions_.retention_deleted().get()},
                 {"read_errors", delivery_.read_errors().get()},
                 {"damaged_skipped", delivery_.damaged_skipped().get()}};
    std::lock_guard lock(snapshot_mutex_);
    out.insert(out.end(), snapshot_.begin(), snapshot_.end());
    return out;
  }

  // Per-partition and per-name figures, copied out of the loop's state.
  void refresh_counters() override {
    Counters snapshot{{"readers", readers_.size()}};
    std::uint64_t bytes = 0;
    for (std::uint32_t p = 0; p < partitions_.count(); ++p) {
      const StreamLog& log = partitions_.log(p);
      const std::string prefix = "partition." + std::to_string(p) + ".";
      snapshot.emplace_back(prefix + "first_offset", log.first_offset());
      snapshot.emplace_back(prefix + "next_offset", log.next_offset());
      snapshot.emplace_back(prefix + "records", log.next_offset() - log.first_offset());
      snapshot.emplace_back(prefix + "bytes", log.bytes());
      snapshot.emplace_back(prefix + "segments", log.segments());
      bytes += log.bytes();
    }
    snapshot.insert(snapshot.begin() + 1, {"bytes", bytes});
    positions_.for_each([&](const std::string& name, const detail::Positions& committed) {
      const std::string prefix = "consumer." + name + ".";
      std::uint64_t lag = 0;
      for (std::uint32_t p = 0; p < partitions_.count(); ++p) {
        const StreamLog& log = partitions_.log(p);
        auto it = committed.find(p);
        const std::uint64_t at = it == committed.end() ? log.first_offset() : it->second;
        lag += log.next_offset() - std::min(at, log.next_offset());
      }
      snapshot.emplace_back(prefix + "members", readers_.members(name));
      snapshot.emplace_back(prefix + "lag", lag);
    });
    std::lock_guard lock(snapshot_mutex_);
    snapshot_ = std::move(snapshot);
    next_snapshot_ = Clock::now() + std::chrono::milliseconds(200);
  }

 private:
  static StreamOptions with_heartbeat(StreamOptions o) {
    if (o.heartbeat.count() <= 0) o.heartbeat = std::chrono::milliseconds(1000);
    return o;
  }

  // ---- producers ----

  // A message new to the stream: it joins its partition's group commit.
  bool store(detail::Publish& m) override {
    if (m.target_group) {
      intake_.answer(m.producer, m.id, ConfirmStatus::rejected,
                     "a stream has no groups: publish without a target group");
      return false;
    }
    group_commit_.add(m.message.envelope.key, m.frame, m.id);
    return true;
  }

  // ---- readers' commands ----

  bool read_back() {
    zmq::message_t identity, command;
    extra_frames_.clear();
    if (!detail::receive_command(back_, identity, command, extra_frames_)) return false;
    const bool extra = !extra_frames_.empty();
    const std::string reader(view(identity));
    CommandFrame cmd;
    const auto decoded = decode_command(view(command), cmd);
    if (!decoded || extra) {
      malformed_.add();
      reply_error(back_, reader, decoded ? "reader commands are one frame" : decoded.detail);
      return true;
    }
    if (cmd.command == Command::subscribe) {
      readers_.subscribe(reader, cmd);
      return true;
    }
    detail::Reader* r = readers_.find(reader);
    if (r == nullptr) {
      // A restarted stream, or a reader given up as lost: it must subscribe again.
      if (cmd.command != Command::detach)
        reply_error(back_, reader, std::string(kNotAttached) + ": send subscribe again");
      return true;
    }
    r->last_heard = Clock::now();
    switch (cmd.command) {
      case Command::commit:
        readers_.commit(*r, cmd.positions);
        break;
      case Command::heartbeat:
        break;
      case Command::assigned:
        readers_.answered(*r, cmd.positions);
        break;
      case Command::detach:
        readers_.remove(reader);
        break;
      default:
        malformed_.add();
        reply_error(back_, reader, "readers may subscribe, commit, heartbeat, detach");
    }
    return true;
  }

  // ---- timers ----

  void run_timers() {
    const auto now = Clock::now();
    if (now >= next_heartbeat_) {
      next_heartbeat_ = now + options_.heartbeat;
      readers_.heartbeat(now);
    }
    if (positions_.dirty() && now >= positions_.save_at()) positions_.save(false);
    if (now >= next_retention_) {
      next_retention_ = now + kRetentionEvery;
      partitions_.apply_retention();
    }
  }

  StreamOptions options_;
  zmq::socket_t front_, back_;
  std::string front_endpoint_, back_endpoint_;
  detail::Partitions partitions_;
  detail::CommittedPositions positions_;
  detail::PublishIntake intake_;
  detail::GroupCommit group_commit_;
  detail::Readers readers_;
  detail::RecordsDelivery delivery_;
  std::vector<zmq::message_t> extra_frames_;  // after a reader's command: not allowed
  Clock::time_point next_heartbeat_, next_retention_, next_snapshot_;

  mutable std::mutex snapshot_mutex_;
  Counters snapshot_;  // guarded by snapshot_mutex_
  md::Counter malformed_;
};

}  // namespace

Stream::Stream(const StreamOptions& options)
    : Device({options.front, options.back, options.stats, options.socket},
             std::make_unique<StreamPump>(options)) {
  if (!stats_endpoint().empty())
    static_cast<StreamPump&>(pump()).announce_admin_endpoint(stats_endpoint());
}

}  // namespace mqkit::devices
