// What each fuzz target does with its input.
#include "harnesses.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

#include <zmq.hpp>

#include <chrono>
#include <optional>
#include <vector>

#include "envelope/codec.hpp"
#include "mqkit/devices/proxy.hpp"
#include "mqkit/devices/stream.hpp"
#include "mqkit/error.hpp"
#include "mqkit/spool.hpp"
#include "mqkit/topology.hpp"
#include "protocol/commands.hpp"
#include "spool/format.hpp"
#include "wire/socket.hpp"

namespace mqkit::fuzz {
namespace {

std::string_view bytes(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// One scratch directory per process, removed at exit.
const std::string& scratch() {
  static const std::string dir = [] {
    char pattern[] = "/tmp/mqkit-fuzz-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    if (made == nullptr) std::abort();
    return std::string(made);
  }();
  static const struct Cleanup {
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup;
  return dir;
}

}  // namespace

void envelope(const std::uint8_t* data, std::size_t size) {
  static detail::EnvelopeCodec codec;
  Message m;
  Limits limits;
  limits.max_message_size = 1 << 20;
  if (codec.decode(bytes(data, size), m, limits)) {
    // Whatever decodes must encode again and decode to the same message.
    const std::string again = encode(m.envelope, m.payload());
    Message back;
    if (decode(again, back) || back.id() != m.id() || back.payload() != m.payload()) std::abort();
  }
}

void proxy_command(const std::uint8_t* data, std::size_t size) {
  detail::protocol::CommandFrame c;
  if (detail::protocol::decode_command(bytes(data, size), c)) {
    if (c.command == detail::protocol::Command::nack && c.ids.empty()) std::abort();
    detail::protocol::CommandFrame back;
    if (!detail::protocol::decode_command(detail::protocol::encode_command(c), back)) std::abort();
  }
}

void spool_segment(const std::uint8_t* data, std::size_t size) {
  // The input is a whole segment file after a valid header: recovery and the
  // read-only reader must both take it.
  const std::string dir = scratch() + "/spool";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    std::ofstream seg(dir + "/" + detail::spool::segment_name(1), std::ios::binary);
    const char header[16] = {'M', 'Q', 'K', 'S', 'P', 'O', 'O', 'L', 1, 0, 0, 0, 0, 0, 0, 0};
    seg.write(header, sizeof header);
    seg.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    (void)read_spool(dir, 1 << 20);
    SpoolOptions options;
    options.durability = Durability::never;
    options.max_record_size = 1 << 20;
    Spool spool(dir, options);
    for (const auto& group : spool.groups())
      for (const auto& id : spool.pending(group)) (void)spool.read(id);
  } catch (const Error&) {
    // A refused file is a fine answer; a crash is not.
  }
}

void topology(const std::uint8_t* data, std::size_t size) {
  try {
    (void)Topology::parse(bytes(data, size), "fuzz.yaml", "/nonexistent");
  } catch (const Error&) {
  }
}

namespace {

// zmq::poll, with a signal taken for "nothing yet": libFuzzer's -timeout
// watchdog (SIGALRM) interrupts it, and cppzmq throws on EINTR.
int poll_once(zmq::pollitem_t& item, std::chrono::milliseconds wait) {
  try {
    return zmq::poll(&item, 1, wait);
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return 0;
    throw;
  }
}

// A worker or producer connection of proxy_state: a DEALER on inproc.
struct FuzzPeer {
  zmq::socket_t socket;
  explicit FuzzPeer(const std::string& endpoint)
      : socket(detail::default_context(), zmq::socket_type::dealer) {
    socket.set(zmq::sockopt::linger, 0);
    socket.connect(endpoint);
  }
  void send(const detail::protocol::CommandFrame& c, const std::vector<std::string>& frames = {}) {
    const auto encoded = detail::protocol::encode_command(c);
    (void)socket.send(zmq::buffer(encoded),
                      frames.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore);
    for (std::size_t i = 0; i < frames.size(); ++i)
      (void)socket.send(zmq::buffer(frames[i]),
                        i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  // Takes whatever has arrived (within `wait`); ids of delivered messages go
  // to `seen`. Returns the confirms' ids.
  std::vector<MessageId> drain(std::vector<MessageId>& seen, std::chrono::milliseconds wait) {
    std::vector<MessageId> confirmed;
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    for (int n = 0; n < 256 && poll_once(item, wait) > 0; ++n) {
      zmq::message_t first;
      if (!socket.recv(first, zmq::recv_flags::dontwait)) break;
      std::vector<zmq::message_t> frames;
      for (bool more = first.more(); more;) {
        frames.emplace_back();
        (void)socket.recv(frames.back());
        more = frames.back().more();
      }
      detail::protocol::CommandFrame c;
      if (!detail::protocol::decode_command({static_cast<const char*>(first.data()), first.size()},
                                            c))
        std::abort();  // the proxy only sends what decodes
      for (const auto& conf : c.confirmations) confirmed.push_back(conf.id);
      for (const auto& f : frames) {
        Message m;
        if (decode({static_cast<const char*>(f.data()), f.size()}, m)) std::abort();
        if (seen.size() < 64) seen.push_back(m.id());
      }
      wait = std::chrono::milliseconds(0);
    }
    return confirmed;
  }
};

}  // namespace

void proxy_state(const std::uint8_t* data, std::size_t size) {
  // The input is a program of well-formed commands from two producers and
  // three workers, with ids drawn from a small set (nil among them) so that
  // re-sends, late acks, acks of unknown ids and group removals meet.
  static std::uint64_t run = 0;
  const std::string dir = scratch() + "/proxy" + std::to_string(run);
  const std::string name = "inproc://mqkit-fuzz-proxy-" + std::to_string(run++);
  devices::ProxyOptions o;
  o.front = name + "-front";
  o.back = name + "-back";
  o.stats = name + "-stats";
  o.spool_dir = dir + "/spool";
  o.dlq_dir = dir + "/dlq";
  o.spool.durability = Durability::never;
  o.retry = RetryPolicy::parse("fixed:1ms", 2);
  o.ack_timeout = std::chrono::milliseconds(5);
  o.heartbeat = std::chrono::milliseconds(20);
  o.dedup_window = 4;
  {
    devices::Proxy proxy(o);
    proxy.start();
    std::vector<FuzzPeer> producers, workers;
    for (int i = 0; i < 2; ++i) producers.emplace_back(proxy.in_endpoint());
    for (int i = 0; i < 3; ++i) workers.emplace_back(proxy.out_endpoint());
    std::vector<MessageId> ids{MessageId{}};
    for (int i = 0; i < 5; ++i) ids.push_back(MessageId::generate());
    const char* groups[] = {"a", "b", "c"};
    const char* topics[] = {"t.x", "t.y", "u"};
    const char* filters[] = {"#", "t.*", "u"};
    std::size_t at = 0;
    auto next = [&]() -> std::uint8_t { return at < size ? data[at++] : 0; };
    for (int step = 0; step < 64 && at < size; ++step) {
      const std::uint8_t op = next(), arg = next(), pick = next();
      auto& worker = workers[arg % workers.size()];
      const MessageId id = ids[pick % ids.size()];
      using detail::protocol::Command;
      switch ((op & 0x0f) % 11) {  // the low bits choose, the high ones vary it
        case 0:
        case 1: {  // publish one or two messages (perhaps the same id twice)
          Envelope e = Envelope::make(topics[arg % 3]);
          e.id = id;
          std::vector<std::string> frames{encode(e, "p")};
          if (op & 0x10) frames.push_back(frames.front());
          std::optional<std::string> target;
          if (op & 0x20) target = groups[pick % 3];
          producers[(op >> 6) & 1].send({.command = Command::publish, .target_group = target},
                                        frames);
          break;
        }
        case 2:
          worker.send({.command = Command::attach,
                       .group = groups[pick % 3],
                       .filters = (op & 0x10) ? std::vector<std::string>{filters[pick % 3]}
                                              : std::vector<std::string>{},
                       .credit = static_cast<std::uint32_t>(op >> 5)});
          break;
        case 3:
          worker.send({.command = Command::ack, .ids = {id}});
          break;
        case 4:
          worker.send({.command = Command::nack,
                       .ids = {id},
                       .action = (op & 0x10) ? detail::protocol::NackAction::dead
                                             : detail::protocol::NackAction::retry,
                       .reason = "fuzz"});
          break;
        case 5:
          worker.send({.command = Command::in_progress, .ids = {id}});
          break;
        case 6:
          worker.send({.command = Command::credit, .credit = pick});
          break;
        case 7:
          worker.send({.command = (op & 0x10) ? Command::detach : Command::heartbeat});
          break;
        case 8:
          try {
            (void)devices::admin_request(proxy.stats_endpoint(), {"group", "rm", groups[pick % 3]},
                                         std::chrono::seconds(5));
          } catch (const Error&) {  // no such group: a fine answer
          }
          break;
        case 9:
          try {
            (void)devices::admin_request(proxy.stats_endpoint(),
                                         {"dlq", "rm", id.to_string() + ((op & 0x10) ? ":a" : "")},
                                         std::chrono::seconds(5));
          } catch (const Error&) {
          }
          break;
        default:  // let time pass: deliveries, timeouts, retries
          for (auto& w : workers) (void)w.drain(ids, std::chrono::milliseconds(pick % 8));
          break;
      }
    }
    // The proxy must still serve: a fresh message is confirmed.
    Envelope e = Envelope::make("t.x");
    producers[0].send({.command = detail::protocol::Command::publish}, {encode(e, "last")});
    bool confirmed = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!confirmed && std::chrono::steady_clock::now() < deadline)
      for (const auto& c : producers[0].drain(ids, std::chrono::milliseconds(50)))
        confirmed = confirmed || c == e.id;
    if (!confirmed) std::abort();
  }  // and stops cleanly with whatever is in flight
  std::filesystem::remove_all(dir);
}

void stream_state(const std::uint8_t* data, std::size_t size) {
  // The stream device in process: producers publish (ids from a small set,
  // nil among them, keys, re-sends in one batch), readers subscribe from
  // anywhere, commit any position, heartbeat and detach.
  static std::uint64_t run = 0;
  const std::string dir = scratch() + "/stream" + std::to_string(run);
  const std::string name = "inproc://mqkit-fuzz-stream-" + std::to_string(run++);
  devices::StreamOptions o;
  o.front = name + "-front";
  o.back = name + "-back";
  o.dir = dir;
  o.partitions = 2;
  o.log.durability = Durability::never;
  o.heartbeat = std::chrono::milliseconds(20);
  o.dedup_window = 4;
  {
    devices::Stream stream(o);
    stream.start();
    std::vector<FuzzPeer> producers, readers;
    for (int i = 0; i < 2; ++i) producers.emplace_back(stream.in_endpoint());
    for (int i = 0; i < 3; ++i) readers.emplace_back(stream.out_endpoint());
    std::vector<MessageId> ids{MessageId{}};
    for (int i = 0; i < 5; ++i) ids.push_back(MessageId::generate());
    const char* names[] = {"", "r1", "r2"};
    const char* starts[] = {"earliest", "latest", "0", "3", "2026-01-01T00:00:00Z", "junk"};
    std::size_t at = 0;
    auto next = [&]() -> std::uint8_t { return at < size ? data[at++] : 0; };
    std::vector<MessageId> seen;
    for (int step = 0; step < 64 && at < size; ++step) {
      const std::uint8_t op = next(), arg = next(), pick = next();
      auto& reader = readers[arg % readers.size()];
      using detail::protocol::Command;
      switch ((op & 0x07) % 6) {
        case 0:
        case 1: {
          Envelope e = Envelope::make("s");
          e.id = ids[pick % ids.size()];
          if (op & 0x10) e.key = std::string(1, static_cast<char>('a' + arg % 3));
          std::vector<std::string> frames{encode(e, "p")};
          if (op & 0x20) frames.push_back(frames.front());
          std::optional<std::string> target;
          if (op & 0x40) target = "g";
          producers[(op >> 7) & 1].send({.command = Command::publish, .target_group = target},
                                        frames);
          break;
        }
        case 2:
          reader.send({.command = Command::subscribe,
                       .group = names[pick % 3],
                       .credit = static_cast<std::uint32_t>(op >> 3),
                       .from = starts[arg % 6]});
          break;
        case 3:
          reader.send({.command = Command::commit,
                       .positions = {{static_cast<std::uint32_t>(pick % 3),
                                      static_cast<std::uint64_t>(op >> 3)}}});
          break;
        case 4:
          reader.send({.command = (op & 0x10) ? Command::detach : Command::heartbeat});
          break;
        default:
          for (auto& r : readers) (void)r.drain(seen, std::chrono::milliseconds(pick % 8));
          seen.clear();
          break;
      }
    }
    Envelope e = Envelope::make("s");
    producers[0].send({.command = detail::protocol::Command::publish}, {encode(e, "last")});
    bool confirmed = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!confirmed && std::chrono::steady_clock::now() < deadline)
      for (const auto& c : producers[0].drain(seen, std::chrono::milliseconds(50)))
        confirmed = confirmed || c == e.id;
    if (!confirmed) std::abort();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace mqkit::fuzz
