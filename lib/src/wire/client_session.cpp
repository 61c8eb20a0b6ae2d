// A client's session with a proxy or a stream device: its socket, its
// heartbeats and re-joins, and the beat thread that covers a busy handler.
#include "wire/client_session.hpp"

#include <algorithm>

#include "mqkit/error.hpp"
#include "wire/socket.hpp"
#include "wire/wait.hpp"

namespace mqkit::detail {
namespace {
using std::chrono::milliseconds;
constexpr int kReadAhead = 64;            // commands read ahead in one go
constexpr milliseconds kAnswerStep{100};  // await_answer looks at the watch this often
}  // namespace

std::string_view Incoming::command() const noexcept {
  return view(command_);
}

std::string_view Incoming::frame(std::size_t i) const noexcept {
  return view(frames_[i]);
}

ClientSession::ClientSession(const std::string& endpoint, const SocketOptions& options, bool watch)
    : socket_(open_socket(zmq::socket_type::dealer, options)) {
  if (watch) watch_.emplace(socket_, options.security.client.has_value());
  attach(socket_, connect(endpoint));
}

// Never blocks for long: while the device is gone the socket queues what is
// sent (heartbeats, joins), and once its queue is full a blocking send would
// wait for ever, where not even stop() could end it. What finds no room in
// time is dropped, as the connection would have lost it: a heartbeat or a
// join is sent again, an ack becomes a redelivery.
bool ClientSession::send(const protocol::CommandFrame& c, milliseconds wait_for_room) {
  const auto encoded = protocol::encode_command(c);
  const auto until = Clock::now() + wait_for_room;
  for (;;) {
    if (socket_.send(zmq::buffer(encoded), zmq::send_flags::dontwait)) return true;
    const auto left = std::chrono::duration_cast<milliseconds>(until - Clock::now());
    if (left <= milliseconds(0) || stopping()) return false;
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLOUT, 0},
                               {nullptr, stop_.fd(), ZMQ_POLLIN, 0},
                               {nullptr, global_stop().fd(), ZMQ_POLLIN, 0}};
    poll_ignoring_signals(items, 3, std::min(left, kAnswerStep));
  }
}

bool ClientSession::send(const protocol::CommandFrame& c) {
  return send(c, heartbeat_);
}

bool ClientSession::try_send(std::string_view command, std::span<const std::string_view> frames) {
  if (!socket_.send(zmq::buffer(command),
                    (frames.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore) |
                        zmq::send_flags::dontwait))
    return false;
  // The rest of a message goes with its first frame: these do not block.
  for (std::size_t i = 0; i < frames.size(); ++i)
    (void)socket_.send(zmq::buffer(frames[i]),
                       i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  return true;
}

bool ClientSession::wait(milliseconds timeout) {
  zmq::pollitem_t items[4] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                              {nullptr, stop_.fd(), ZMQ_POLLIN, 0},
                              {nullptr, global_stop().fd(), ZMQ_POLLIN, 0},
                              {nullptr, -1, 0, 0}};
  int count = 3;
  if (watch_) items[count++] = {watch_->socket().handle(), 0, ZMQ_POLLIN, 0};
  poll_ignoring_signals(items, count, timeout);
  if (stopping()) return false;
  return (items[0].revents & ZMQ_POLLIN) != 0;
}

bool ClientSession::receive(Incoming& in) {
  if (!socket_.recv(in.command_, zmq::recv_flags::dontwait)) return false;
  in.frames_.clear();
  in.note = 0;
  // The rest of a multipart message arrives with its first frame.
  for (bool more = in.command_.more(); more;) {
    in.frames_.emplace_back();
    (void)socket_.recv(in.frames_.back(), zmq::recv_flags::dontwait);
    more = in.frames_.back().more();
  }
  last_heard_ = Clock::now();
  return true;
}

bool ClientSession::next(Incoming& in) {
  if (inbox_.empty()) return receive(in);
  in = std::move(inbox_.front());
  inbox_.pop_front();
  return true;
}

void ClientSession::await_answer(Clock::time_point until, const std::string& who,
                                 std::string_view hint) {
  // In short steps: a failed CURVE handshake is said at once, with the key
  // to check, rather than taken for a missing device at the timeout.
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(until - Clock::now());
    if (wait(std::clamp(left, milliseconds(0), kAnswerStep))) return;
    (void)dropped();
    if (const auto problem = connection_problem(); !problem.empty())
      throw Error(errc::timeout, who + ": " + problem);
    if (left <= milliseconds(0) || stopping())
      throw Error(errc::timeout, who + " " + std::string(hint));
  }
}

void ClientSession::read_ahead(const std::function<bool(Incoming&)>& keep) {
  for (int n = 0; n < kReadAhead; ++n) {
    Incoming in;
    if (!receive(in)) return;
    if (keep(in)) inbox_.push_back(std::move(in));
  }
}

void ClientSession::set_heartbeat(milliseconds heartbeat) {
  if (heartbeat.count() > 0) heartbeat_ = heartbeat;
}

void ClientSession::joined(SessionHandler& handler) {
  watch_.reset();
  last_heard_ = Clock::now();
  busy_.start([this, &handler] { return handler.beat_interval(heartbeat_); },
              [this, &handler] {
                // The run loop does its own heartbeats; this covers a busy handler.
                const auto now = Clock::now();
                if (now >= next_beat_) {
                  send({.command = protocol::Command::heartbeat}, milliseconds(0));
                  next_beat_ = now + heartbeat_;
                }
                handler.beat(now);
              });
}

void ClientSession::run(SessionHandler& handler) {
  std::unique_lock lock(mutex_);
  Incoming in;
  while (!stopping()) {
    const auto now = Clock::now();
    if (now >= next_beat_) {
      send({.command = protocol::Command::heartbeat}, milliseconds(0));
      next_beat_ = now + heartbeat_;
    }
    if (now - last_heard_ > kMissedHeartbeats * heartbeat_) {
      handler.join();  // the device went away or forgot us: join again
      last_heard_ = now;
    }
    const auto until_beat = std::chrono::duration_cast<milliseconds>(next_beat_ - now);
    if (inbox_.empty() && !wait(std::max(until_beat, milliseconds(1)))) continue;
    while (!stopping() && next(in)) handler.take(in, lock);
    handler.settle(lock);
  }
  handler.settle(lock);
}

void ClientSession::detach(SessionHandler& handler) {
  std::unique_lock lock(mutex_);
  handler.settle(lock);
  send({.command = protocol::Command::detach});
}

void ClientSession::close(SessionHandler& handler) noexcept {
  try {
    detach(handler);
  } catch (...) {
  }
}

bool ClientSession::dropped() {
  return watch_ && watch_->dropped();
}

std::string ClientSession::connection_problem() const {
  return watch_ ? watch_->problem() : std::string();
}

}  // namespace mqkit::detail
