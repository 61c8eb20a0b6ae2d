// The proxy in process, driven over tcp loopback by plain DEALER sockets
// speaking docs/proxy-protocol.md: confirm-after-store, fan-out to groups,
// credit, acks, retries, dead letters, ack timeouts, restarts, garbage.
#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <unordered_map>
#include "detail/id_table.hpp"
#include "fault_env.hpp"
#include "helpers.hpp"
#include "mqkit/devices/proxy.hpp"
#include "mqkit/envelope.hpp"
#include "mqkit/reliable_consumer.hpp"
#include "mqkit/spool.hpp"
#include "protocol/commands.hpp"
#include "protocol_peer.hpp"
#include "stats_protocol.hpp"

using namespace std::chrono_literals;
using namespace mqkit::detail::protocol;
namespace md = mqkit::devices;

namespace {

// A DEALER speaking the proxy protocol, for producers and workers alike:
// the replies' frames read as messages.
class Peer : public mqkit::test::ProtocolPeer {
 public:
  using ProtocolPeer::ProtocolPeer;

  // The next command other than a heartbeat, and the message frames after it.
  std::optional<std::pair<CommandFrame, std::vector<mqkit::Message>>> receive(
      std::chrono::milliseconds timeout = 5s) {
    auto reply = ProtocolPeer::receive(timeout);
    if (!reply) return std::nullopt;
    std::pair<CommandFrame, std::vector<mqkit::Message>> out{std::move(reply->cmd), {}};
    for (const auto& frame : reply->frames) out.second.push_back(mqkit::decode(frame));
    // A DELIVER carries each message's attempt (1.3), as a worker applies it.
    for (std::size_t i = 0; i < out.first.attempts.size() && i < out.second.size(); ++i)
      out.second[i].envelope.attempt = out.first.attempts[i];
    return out;
  }
  // The next `n` delivered messages, whatever DELIVER batches they came in.
  std::vector<mqkit::Message> deliveries(std::size_t n, std::chrono::milliseconds timeout = 5s) {
    std::vector<mqkit::Message> out;
    while (out.size() < n) {
      auto d = receive(timeout);
      if (!d) break;
      REQUIRE(d->first.command == Command::deliver);
      for (auto& m : d->second) out.push_back(std::move(m));
    }
    return out;
  }
  // Publishes one message per payload and returns their confirmations.
  std::vector<Confirmation> publish(const std::string& topic,
                                    const std::vector<std::string>& payloads,
                                    std::optional<std::string> target = std::nullopt) {
    std::vector<std::string> frames;
    for (const auto& p : payloads) frames.push_back(mqkit::encode(mqkit::Envelope::make(topic), p));
    send({.command = Command::publish, .target_group = target}, frames);
    std::vector<Confirmation> all;
    while (all.size() < payloads.size()) {
      auto reply = receive();
      REQUIRE(reply);
      REQUIRE(reply->first.command == Command::confirm);
      all.insert(all.end(), reply->first.confirmations.begin(), reply->first.confirmations.end());
    }
    return all;
  }
};

struct Fixture {
  mqkit::test::TempDir dir;
  md::ProxyOptions options;
  std::optional<md::Proxy> proxy;

  Fixture() {
    options.front = options.back = "tcp://127.0.0.1:*";
    options.spool_dir = dir.file("spool");
    options.dlq_dir = dir.file("dlq");
    options.retry = mqkit::RetryPolicy::parse("fixed:50ms", 3);
    options.ack_timeout = 2s;
  }
  void start() {
    proxy.emplace(options);
    proxy->start();
  }
  std::string front() const { return proxy->in_endpoint(); }
  std::string back() const { return proxy->out_endpoint(); }
  Peer worker(const std::string& group, std::uint32_t prefetch,
              std::vector<std::string> filters = {}) {
    Peer w(back());
    w.send({.command = Command::attach,
            .group = group,
            .filters = std::move(filters),
            .credit = prefetch});
    auto reply = w.receive();
    REQUIRE(reply);
    REQUIRE(reply->first.command == Command::attached);
    return w;
  }
};

mqkit::MessageId ack_next(Peer& w, const std::string& expected_payload = "") {
  auto d = w.receive();
  REQUIRE(d);
  REQUIRE(d->first.command == Command::deliver);
  REQUIRE(d->second.size() == 1);
  if (!expected_payload.empty()) CHECK(d->second[0].payload() == expected_payload);
  w.send({.command = Command::ack, .ids = {d->second[0].id()}});
  return d->second[0].id();
}

// Publishes "m1" to billing and has its worker dead-letter it ("poison");
// its id, once the DLQ holds it.
mqkit::MessageId dead_letter_one(Fixture& f, Peer& producer) {
  REQUIRE(producer.publish("order.created", {"m1"})[0].status == ConfirmStatus::stored);
  auto w = f.worker("billing", 1);
  auto d = w.receive();
  REQUIRE(d);
  const auto id = d->second[0].id();
  w.send({.command = Command::nack, .ids = {id}, .action = NackAction::dead, .reason = "poison"});
  REQUIRE(mqkit::test::wait_for([&] { return f.proxy->stats().get("dead") == 1; }));
  return id;
}

}  // namespace

TEST_CASE("the proxy confirms a message once stored and delivers it to every matching group",
          "[proxy]") {
  Fixture f;
  f.options.groups = {{"email", {"order.#"}}, {"billing", {"order.created"}}};
  f.start();
  auto email = f.worker("email", 10);
  auto billing = f.worker("billing", 10);
  Peer producer(f.front());
  const auto confirms = producer.publish("order.created", {"order 1"});
  REQUIRE(confirms.size() == 1);
  CHECK(confirms[0].status == ConfirmStatus::stored);
  ack_next(email, "order 1");
  ack_next(billing, "order 1");
  // Only email's filter matches a shipped order; nothing matches a user topic.
  CHECK(producer.publish("order.shipped", {"s"})[0].status == ConfirmStatus::stored);
  ack_next(email, "s");
  CHECK_FALSE(billing.receive(200ms));
  const auto unroutable = producer.publish("user.signup", {"u"});
  CHECK(unroutable[0].status == ConfirmStatus::unroutable);
  CHECK(mqkit::test::wait_for([&] { return f.proxy->stats().get("acked") == 3; }));
}

TEST_CASE("a worker never holds more unacked messages than its prefetch", "[proxy]") {
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.start();
  Peer producer(f.front());
  (void)producer.publish("t", {"1", "2", "3"});
  auto w = f.worker("g", 1);
  auto first = w.receive();
  REQUIRE(first);
  CHECK_FALSE(w.receive(300ms));  // the second waits for the first ack
  w.send({.command = Command::ack, .ids = {first->second[0].id()}});
  ack_next(w, "2");
  ack_next(w, "3");
}

TEST_CASE("a nacked message comes back with attempt+1 and dies after max attempts", "[proxy]") {
  Fixture f;
  f.options.groups = {{"billing", {"#"}}};
  f.start();
  Peer producer(f.front());
  (void)producer.publish("order.created", {"poison"});
  auto w = f.worker("billing", 1);
  for (std::uint32_t attempt = 1; attempt <= 3; ++attempt) {
    auto d = w.receive();
    REQUIRE(d);
    CHECK(d->second[0].envelope.attempt == attempt);
    w.send({.command = Command::nack,
            .ids = {d->second[0].id()},
            .action = NackAction::retry,
            .reason = "card declined"});
  }
  CHECK_FALSE(w.receive(300ms));
  REQUIRE(mqkit::test::wait_for([&] { return f.proxy->stats().get("dead") == 1; }));
  f.proxy.reset();  // close the spools so the DLQ can be read back
  const auto dead = mqkit::read_spool(f.options.dlq_dir).dead_letters;
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].dead_letter->reason == "max attempts");
  CHECK(dead[0].dead_letter->attempts == 3);
  CHECK(dead[0].dead_letter->last_error == "card declined");
  CHECK(dead[0].dead_letter->group == "billing");
}

// A retry waits for its ATTEMPT record; with a retry delay of 0 the pump
// once re-armed that wait at "now" for ever, on the thread that had to take
// the record's completion (found in review): nothing else was served.
TEST_CASE("a zero retry delay redelivers after the attempt is stored and the proxy keeps serving",
          "[proxy]") {
  Fixture f;
  f.options.retry = mqkit::RetryPolicy::parse("fixed:0", 3);
  f.options.groups = {{"billing", {"#"}}};
  f.start();
  Peer producer(f.front());
  (void)producer.publish("order.created", {"m1"});
  auto w = f.worker("billing", 1);
  auto d = w.receive();
  REQUIRE(d);
  w.send({.command = Command::nack,
          .ids = {d->second[0].id()},
          .action = NackAction::retry,
          .reason = "try again"});
  auto again = w.receive(5s);
  REQUIRE(again);
  CHECK(again->second[0].envelope.attempt == 2);
  const auto confirms = producer.publish("order.created", {"m2"});
  REQUIRE(confirms.size() == 1);
  CHECK(confirms[0].status == ConfirmStatus::stored);
}

// Found by the contract checker: a failure whose ATTEMPT record did not
// reach the disk was redelivered with attempt 2 at once, and after a
// restart the same message came with attempt 1.
TEST_CASE("a failed delivery comes back only once its ATTEMPT record is durable", "[proxy]") {
  mqkit::test::FaultEnv env;
  Fixture f;
  f.options.spool.env = &env;
  f.options.groups = {{"billing", {"#"}}};
  f.start();
  Peer producer(f.front());
  REQUIRE(producer.publish("order.created", {"m1"})[0].status == ConfirmStatus::stored);
  {
    auto w = f.worker("billing", 1);
    auto d = w.receive();
    REQUIRE(d);
    env.inject(
        {.op = mqkit::test::FaultEnv::Op::write, .error = EIO, .path_part = "spool", .times = -1});
    w.send({.command = Command::nack,
            .ids = {d->second[0].id()},
            .action = NackAction::retry,
            .reason = "try again"});
    CHECK_FALSE(w.receive(500ms));  // its failure is not on disk: it waits
    env.clear_faults();
    auto again = w.receive(5s);
    REQUIRE(again);
    CHECK(again->second[0].envelope.attempt == 2);
  }
  f.proxy.reset();
  f.start();
  auto w = f.worker("billing", 1);
  auto after = w.receive(5s);
  REQUIRE(after);
  CHECK(after->second[0].envelope.attempt >= 2);  // never lower than a worker saw
}

// Found by the contract checker: a NACK dead that the DLQ refused brought
// the message back, but its failure was not written, so after a restart it
// came with a lower attempt number than before.
TEST_CASE("a dead letter the DLQ refuses comes back with its failure counted, also after a restart",
          "[proxy]") {
  Fixture f;
  f.options.groups = {{"billing", {"#"}}};
  f.options.dlq_max_size = 1;  // the DLQ takes nothing
  f.start();
  Peer producer(f.front());
  REQUIRE(producer.publish("order.created", {"m1"})[0].status == ConfirmStatus::stored);
  {
    auto w = f.worker("billing", 1);
    auto d = w.receive();
    REQUIRE(d);
    CHECK(d->second[0].envelope.attempt == 1);
    w.send({.command = Command::nack,
            .ids = {d->second[0].id()},
            .action = NackAction::dead,
            .reason = "poison"});
    auto again = w.receive(5s);  // refused by the DLQ: it stays and comes back
    REQUIRE(again);
    CHECK(again->second[0].envelope.attempt == 2);
  }
  CHECK(f.proxy->stats().get("dead_letter_failed") >= 1);
  f.proxy.reset();
  f.start();
  auto w = f.worker("billing", 1);
  auto after = w.receive(5s);
  REQUIRE(after);
  CHECK(after->second[0].envelope.attempt >= 2);  // never lower than a worker saw
}

// Under interval the main spool's ack is not synced at once, and neither
// was the dead letter: a power loss that kept the ack (synced by the next
// interval) and took the dead letter lost the message. The DLQ syncs.
TEST_CASE("under fsync interval a dead letter is synced before the message leaves the spool",
          "[proxy][crash]") {
  mqkit::test::FaultEnv env;
  Fixture f;
  f.options.spool.env = &env;
  f.options.spool.durability = mqkit::Durability::interval;
  f.options.spool.sync_interval = 1h;
  f.options.groups = {{"billing", {"#"}}};
  f.start();
  Peer producer(f.front());
  REQUIRE(producer.publish("order.created", {"m1"})[0].status == ConfirmStatus::stored);
  {
    auto w = f.worker("billing", 1);
    auto d = w.receive();
    REQUIRE(d);
    w.send({.command = Command::nack,
            .ids = {d->second[0].id()},
            .action = NackAction::dead,
            .reason = "poison"});
    REQUIRE(mqkit::test::wait_for([&] { return f.proxy->stats().get("dead") == 1; }));
  }
  env.power_loss();
  f.proxy.reset();
  mqkit::SpoolOptions dlq_options;
  dlq_options.dead_letters = true;
  const mqkit::Spool dlq(f.options.dlq_dir, dlq_options);
  const auto letters = dlq.dead_letters();
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].dead_letter->last_error == "poison");
}

// Protocol 1.3: a retry goes out as the frame that was stored (never
// decoded and encoded again), its attempt in DELIVER; a worker that
// attached with 1.2 reads the attempt from the envelope and gets it there.
TEST_CASE("a retry's attempt travels in DELIVER, and in the envelope only for a 1.2 worker",
          "[proxy]") {
  Fixture f;
  f.options.groups = {{"billing", {"#"}}};
  f.start();
  Peer producer(f.front());
  const std::string frame = mqkit::encode(mqkit::Envelope::make("order.created"), "m1");
  REQUIRE(producer.publish_frames({frame}, 1)[0].status == ConfirmStatus::stored);
  auto w = f.worker("billing", 1);
  auto first = w.ProtocolPeer::receive(5s);
  REQUIRE(first);
  CHECK(first->cmd.attempts == std::vector<std::uint32_t>{1});
  CHECK(first->frames.at(0) == frame);
  w.send({.command = Command::nack,
          .ids = {mqkit::decode(frame).id()},
          .action = NackAction::retry,
          .reason = "again"});
  auto second = w.ProtocolPeer::receive(5s);
  REQUIRE(second);
  CHECK(second->cmd.attempts == std::vector<std::uint32_t>{2});
  CHECK(second->frames.at(0) == frame);  // the stored bytes, not re-encoded
  w.send({.command = Command::detach});

  // The same ATTACH with minor version 2 (the byte after "MQK" and major 1).
  Peer old_worker(f.back());
  std::string attach =
      encode_command({.command = Command::attach, .group = "billing", .credit = 1});
  REQUIRE(static_cast<unsigned char>(attach[6]) == mqkit::detail::protocol::kProtocolMinor);
  attach[6] = 2;
  old_worker.send_raw(attach);
  auto attached = old_worker.ProtocolPeer::receive(5s);
  REQUIRE(attached);
  REQUIRE(attached->cmd.command == Command::attached);
  auto third = old_worker.ProtocolPeer::receive(5s);
  REQUIRE(third);
  REQUIRE(third->cmd.command == Command::deliver);
  CHECK(mqkit::decode(third->frames.at(0)).envelope.attempt == 2);  // detach cost no attempt
}

TEST_CASE("an unacked delivery is redelivered to another worker after the ack timeout", "[proxy]") {
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.options.ack_timeout = 300ms;
  f.start();
  Peer producer(f.front());
  (void)producer.publish("t", {"job"});
  std::optional<Peer> silent(f.worker("g", 1));
  auto d = silent->receive();
  REQUIRE(d);
  auto other = f.worker("g", 1);
  auto again = other.receive(5s);
  REQUIRE(again);
  CHECK(again->second[0].id() == d->second[0].id());
  CHECK(again->second[0].envelope.attempt == 2);
}

TEST_CASE("a restarted proxy delivers what was stored and not acked", "[proxy]") {
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.start();
  {
    Peer producer(f.front());
    (void)producer.publish("t", {"a", "b", "c"});
    auto w = f.worker("g", 1);
    ack_next(w, "a");
    REQUIRE(mqkit::test::wait_for([&] { return f.proxy->stats().get("acked") == 1; }));
  }
  f.proxy.reset();
  f.start();
  auto w = f.worker("g", 10);
  std::set<std::string> seen;
  for (const auto& m : w.deliveries(2)) {
    seen.emplace(m.payload());
    w.send({.command = Command::ack, .ids = {m.id()}});
  }
  CHECK(seen == std::set<std::string>{"b", "c"});
  CHECK_FALSE(w.receive(300ms));
}

TEST_CASE("detach hands prefetched messages back without spending an attempt", "[proxy]") {
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.start();
  Peer producer(f.front());
  (void)producer.publish("t", {"x"});
  {
    auto w = f.worker("g", 5);
    REQUIRE(w.receive());
    w.send({.command = Command::detach});
  }
  auto next = f.worker("g", 5);
  auto d = next.receive();
  REQUIRE(d);
  CHECK(d->second[0].envelope.attempt == 1);
}

TEST_CASE("an attach with other filters than the group's is refused", "[proxy]") {
  Fixture f;
  f.options.groups = {{"email", {"order.#"}}};
  f.start();
  Peer w(f.back());
  w.send({.command = Command::attach, .group = "email", .filters = {"user.*"}, .credit = 1});
  auto reply = w.receive();
  REQUIRE(reply);
  CHECK(reply->first.command == Command::error);
  CHECK_THAT(reply->first.reason, Catch::Contains("order.#"));
}

TEST_CASE("garbage on both ports is answered or dropped while others are served", "[proxy]") {
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.start();
  Peer junk_producer(f.front()), junk_worker(f.back());
  junk_producer.send_raw("\x01\x02 not a command");
  junk_worker.send_raw(std::string(300, '\xff'));
  CHECK(junk_producer.receive()->first.command == Command::error);
  CHECK(junk_worker.receive()->first.command == Command::error);
  auto w = f.worker("g", 1);
  Peer producer(f.front());
  CHECK(producer.publish("t", {"fine"})[0].status == ConfirmStatus::stored);
  ack_next(w, "fine");
  CHECK(f.proxy->stats().get("malformed") == 2);

  // Then 500 frames of random bytes and random lengths, some multi-part, on both ports.
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) {
    std::string junk(rng() % 2048, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    if (i % 5 == 0) junk.insert(0, "\x95\xa3MQK\x01\x00");  // a plausible start
    std::vector<std::string> parts{junk};
    if (i % 7 == 0) parts.push_back(junk.substr(0, junk.size() / 2));
    auto& peer = i % 2 == 0 ? junk_producer : junk_worker;
    peer.send_frames(parts);
  }
  CHECK(producer.publish("t", {"still fine"})[0].status == ConfirmStatus::stored);
  ack_next(w, "still fine");
  CHECK(mqkit::test::wait_for([&] { return f.proxy->stats().get("malformed") >= 2 + 400; }));
}

TEST_CASE("a message published twice with the same id is stored once", "[proxy]") {
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.start();
  Peer producer(f.front());
  const std::string frame = mqkit::encode(mqkit::Envelope::make("t"), "once");
  producer.send({.command = Command::publish}, {frame});
  auto first = producer.receive();
  REQUIRE(first);
  CHECK(first->first.confirmations.at(0).status == ConfirmStatus::stored);
  producer.send({.command = Command::publish}, {frame});
  auto second = producer.receive();
  REQUIRE(second);
  CHECK(second->first.confirmations.at(0).status == ConfirmStatus::duplicate);
  auto w = f.worker("g", 10);
  ack_next(w, "once");
  CHECK_FALSE(w.receive(300ms));
  CHECK(f.proxy->stats().get("duplicate") == 1);
}

TEST_CASE("a worker whose prefetch exceeds the socket's HWM still gets every message", "[proxy]") {
  // Regression: a full queue to a live worker once looked like a lost worker.
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.start();
  Peer producer(f.front());
  for (int batch = 0; batch < 6; ++batch)
    (void)producer.publish("t", std::vector<std::string>(500, "m"));
  auto w = f.worker("g", 2000);
  std::set<mqkit::MessageId> seen;
  while (seen.size() < 3000) {
    auto d = w.receive(5s);
    REQUIRE(d);
    REQUIRE(d->first.command == Command::deliver);
    CommandFrame ack{.command = Command::ack};
    for (const auto& m : d->second) {
      seen.insert(m.id());
      ack.ids.push_back(m.id());
    }
    w.send(ack);
  }
  CHECK(mqkit::test::wait_for([&] { return f.proxy->stats().get("acked") == 3000; }));
}

TEST_CASE("attempt counts survive a restart of the proxy", "[proxy]") {
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.options.retry = mqkit::RetryPolicy::parse("fixed:10ms", 5);
  f.start();
  {
    Peer producer(f.front());
    (void)producer.publish("t", {"flaky"});
    auto w = f.worker("g", 1);
    for (std::uint32_t attempt = 1; attempt <= 2; ++attempt) {
      auto d = w.deliveries(1);
      REQUIRE(d.size() == 1);
      CHECK(d[0].envelope.attempt == attempt);
      w.send({.command = Command::nack, .ids = {d[0].id()}, .reason = "try later"});
    }
    REQUIRE(mqkit::test::wait_for([&] { return f.proxy->stats().get("retried") == 2; }));
  }
  f.proxy.reset();
  f.start();
  auto w = f.worker("g", 1);
  auto d = w.deliveries(1);
  REQUIRE(d.size() == 1);
  CHECK(d[0].payload() == "flaky");
  CHECK(d[0].envelope.attempt == 3);
}

TEST_CASE("a NACK dead goes to the dead-letter spool at once, with its reason", "[proxy]") {
  Fixture f;
  f.options.groups = {{"billing", {"#"}}, {"email", {"#"}}};
  f.start();
  Peer producer(f.front());
  (void)producer.publish("order.created", {"bad card", "good card"});
  auto billing = f.worker("billing", 10);
  const auto d = billing.deliveries(2);
  REQUIRE(d.size() == 2);
  billing.send({.command = Command::nack,
                .ids = {d[0].id()},
                .action = NackAction::dead,
                .reason = "card number is malformed"});
  billing.send({.command = Command::ack, .ids = {d[1].id()}});
  REQUIRE(mqkit::test::wait_for([&] { return f.proxy->stats().get("dead") == 1; }));
  CHECK(f.proxy->stats().get("retried") == 0);
  // The other group still gets both.
  auto email = f.worker("email", 10);
  CHECK(email.deliveries(2).size() == 2);
  f.proxy.reset();
  const auto dead = mqkit::read_spool(f.options.dlq_dir).dead_letters;
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].id == d[0].id());
  CHECK(dead[0].dead_letter->reason == "nack dead");
  CHECK(dead[0].dead_letter->last_error == "card number is malformed");
  CHECK(dead[0].dead_letter->attempts == 1);
  CHECK(dead[0].dead_letter->group == "billing");
}

TEST_CASE("a worker that stops heartbeating is lost and its message goes to another worker",
          "[proxy]") {
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.options.heartbeat = 100ms;
  f.options.ack_timeout = 60s;  // only the missed heartbeats can bring it back
  f.start();
  Peer producer(f.front());
  (void)producer.publish("t", {"job"});
  auto silent = f.worker("g", 1);  // never heartbeats
  REQUIRE(silent.deliveries(1).size() == 1);
  auto alive = f.worker("g", 1);
  std::optional<mqkit::Message> redelivered;
  for (int i = 0; i < 100 && !redelivered; ++i) {
    alive.send({.command = Command::heartbeat});
    auto d = alive.receive(50ms);
    if (d && d->first.command == Command::deliver) redelivered = d->second.at(0);
  }
  REQUIRE(redelivered);
  CHECK(redelivered->payload() == "job");
  CHECK(redelivered->envelope.attempt == 2);
  CHECK(f.proxy->stats().get("lost_workers") >= 1);
  // The lost worker is told to attach again when it speaks.
  silent.send({.command = Command::ack, .ids = {redelivered->id()}});
  auto told = silent.receive(2s);
  REQUIRE(told);
  CHECK(told->first.command == Command::error);
  CHECK_THAT(told->first.reason, Catch::StartsWith("not attached"));
}

TEST_CASE("redelivery delays follow the backoff policy", "[proxy]") {
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.options.retry = mqkit::RetryPolicy::parse("exponential:100ms..400ms", 4);
  f.start();
  Peer producer(f.front());
  (void)producer.publish("t", {"slow to succeed"});
  auto w = f.worker("g", 1);
  std::vector<std::chrono::steady_clock::time_point> nacked, delivered;
  for (int attempt = 1; attempt <= 4; ++attempt) {
    auto d = w.deliveries(1);
    REQUIRE(d.size() == 1);
    delivered.push_back(std::chrono::steady_clock::now());
    CHECK(d[0].envelope.attempt == static_cast<std::uint32_t>(attempt));
    if (attempt < 4) {
      w.send({.command = Command::nack, .ids = {d[0].id()}, .reason = "not yet"});
      nacked.push_back(std::chrono::steady_clock::now());
    } else {
      w.send({.command = Command::ack, .ids = {d[0].id()}});
    }
  }
  for (std::uint32_t failed = 1; failed <= 3; ++failed) {
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(delivered[failed] -
                                                                              nacked[failed - 1]);
    INFO("after failure " << failed << " waited " << waited.count() << " ms");
    // Generous slack on top: the bounds are the policy's, not the scheduler's.
    CHECK(waited >= f.options.retry.min_delay(failed) - 5ms);
    CHECK(waited <= f.options.retry.max_delay(failed) + 250ms);
  }
}

TEST_CASE("a publish to a target group reaches only it, and one no group takes is unroutable",
          "[proxy]") {
  Fixture f;
  f.options.groups = {{"billing", {"order.#"}}, {"email", {"order.#"}}};
  f.start();
  Peer producer(f.front());
  CHECK(producer.publish("order.created", {"replayed"}, "billing")[0].status ==
        ConfirmStatus::stored);
  CHECK(producer.publish("user.created", {"nobody"})[0].status == ConfirmStatus::unroutable);
  CHECK(producer.publish("order.created", {"x"}, "no-such-group")[0].status ==
        ConfirmStatus::unroutable);
  auto billing = f.worker("billing", 10);
  CHECK(billing.deliveries(1).at(0).payload() == "replayed");
  auto email = f.worker("email", 10);
  CHECK_FALSE(email.receive(300ms));
  CHECK(f.proxy->stats().get("unroutable") == 2);
}

// ---- integrity (issue 13) ----

TEST_CASE("a message whose id is nil is rejected with a reason and the proxy keeps serving",
          "[proxy][integrity]") {
  // Regression: the nil id marks an empty slot of the id table; the first such
  // PUBLISH brought the proxy down with SIGSEGV.
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.start();
  Peer producer(f.front());
  mqkit::Envelope nil = mqkit::Envelope::make("t");
  nil.id = mqkit::MessageId{};
  nil.created_at = 1;
  producer.send({.command = Command::publish},
                {mqkit::encode(nil, "nil"), mqkit::encode(nil, "x")});
  auto reply = producer.receive();
  REQUIRE(reply);
  REQUIRE(reply->first.command == Command::confirm);
  REQUIRE_FALSE(reply->first.confirmations.empty());
  CHECK(reply->first.confirmations[0].status == ConfirmStatus::rejected);
  CHECK_THAT(reply->first.confirmations[0].reason, Catch::Contains("nil"));
  CHECK(producer.publish("t", {"fine"})[0].status == ConfirmStatus::stored);
  auto w = f.worker("g", 10);
  ack_next(w, "fine");
  CHECK_FALSE(w.receive(200ms));
}

TEST_CASE("a re-send of an id whose store is in progress gets the original's final answer",
          "[proxy][integrity]") {
  // The spool is full, so the original is answered `full`; its re-send in the
  // same batch was answered `duplicate` (a false confirm) while the original
  // was still being appended.
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.options.spool.max_size = 1;
  f.start();
  Peer producer(f.front());
  const std::string frame = mqkit::encode(mqkit::Envelope::make("t"), "once");
  producer.send({.command = Command::publish}, {frame, frame});
  std::vector<Confirmation> all;
  while (all.size() < 2) {
    auto reply = producer.receive();
    REQUIRE(reply);
    all.insert(all.end(), reply->first.confirmations.begin(), reply->first.confirmations.end());
  }
  CHECK(all[0].status == ConfirmStatus::full);
  CHECK(all[1].status == ConfirmStatus::full);
  CHECK(f.proxy->stats().get("duplicate") == 0);
}

TEST_CASE("past 64 groups an attach is refused and every message is still stored or refused",
          "[proxy][integrity]") {
  Fixture f;
  f.options.stats = "tcp://127.0.0.1:*";
  f.start();
  std::vector<Peer> workers;
  for (int i = 0; i < 64; ++i) workers.push_back(f.worker("g" + std::to_string(i), 1));
  Peer extra(f.back());
  extra.send({.command = Command::attach, .group = "one-too-many", .credit = 1});
  auto refused = extra.receive();
  REQUIRE(refused);
  CHECK(refused->first.command == Command::error);
  CHECK_THAT(refused->first.reason, Catch::Contains("64"));
  Peer producer(f.front());
  const auto confirms = producer.publish("t", {"a", "b"});
  CHECK(confirms[0].status == ConfirmStatus::stored);
  CHECK(confirms[1].status == ConfirmStatus::stored);

  // A deleted group's place is taken by a new one, across a restart too.
  (void)md::admin_request(f.proxy->stats_endpoint(), {"group", "rm", "g0"});
  workers.clear();
  {
    auto fresh = f.worker("fresh", 10);
    CHECK(producer.publish("t", {"c"})[0].status == ConfirmStatus::stored);
    CHECK(fresh.deliveries(1).at(0).payload() == "c");
  }
  // The spool's records name 65 groups by now: recovery keeps them all.
  f.proxy.reset();
  f.start();
  auto fresh = f.worker("fresh", 10);
  CHECK(fresh.deliveries(1).at(0).payload() == "c");
  auto g1 = f.worker("g1", 10);
  std::multiset<std::string> seen;
  for (const auto& m : g1.deliveries(3)) seen.emplace(m.payload());
  CHECK(seen == std::multiset<std::string>{"a", "b", "c"});
}

TEST_CASE("a message the proxy still holds is a duplicate whatever the dedup window",
          "[proxy][integrity]") {
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.options.dedup_window = 2;
  f.start();
  Peer producer(f.front());
  const std::string frame = mqkit::encode(mqkit::Envelope::make("t"), "held");
  producer.send({.command = Command::publish}, {frame});
  REQUIRE(producer.receive()->first.confirmations.at(0).status == ConfirmStatus::stored);
  (void)producer.publish("t", {"1", "2", "3"});  // the window forgets "held"
  producer.send({.command = Command::publish}, {frame});
  auto again = producer.receive();
  REQUIRE(again);
  CHECK(again->first.confirmations.at(0).status == ConfirmStatus::duplicate);
  auto w = f.worker("g", 10);
  std::multiset<std::string> seen;
  for (const auto& m : w.deliveries(4)) {
    seen.emplace(m.payload());
    w.send({.command = Command::ack, .ids = {m.id()}});
  }
  CHECK(seen == std::multiset<std::string>{"held", "1", "2", "3"});
  CHECK_FALSE(w.receive(300ms));
}

TEST_CASE("the dedup window survives a restart, acked messages included", "[proxy][integrity]") {
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.start();
  const std::string frame = mqkit::encode(mqkit::Envelope::make("t"), "acked before the restart");
  {
    Peer producer(f.front());
    producer.send({.command = Command::publish}, {frame});
    REQUIRE(producer.receive()->first.confirmations.at(0).status == ConfirmStatus::stored);
    auto w = f.worker("g", 1);
    ack_next(w, "acked before the restart");
    REQUIRE(mqkit::test::wait_for([&] { return f.proxy->stats().get("acked") == 1; }));
  }
  f.proxy.reset();
  f.start();
  Peer producer(f.front());
  producer.send({.command = Command::publish}, {frame});  // its confirm was lost: re-sent
  auto again = producer.receive();
  REQUIRE(again);
  CHECK(again->first.confirmations.at(0).status == ConfirmStatus::duplicate);
  auto w = f.worker("g", 1);
  CHECK_FALSE(w.receive(300ms));
}

TEST_CASE("a removed group stays removed after a restart", "[proxy][integrity]") {
  Fixture f;
  f.options.stats = "tcp://127.0.0.1:*";
  f.start();
  {
    auto ghost = f.worker("ghost", 1, {"order.#"});
    Peer producer(f.front());
    CHECK(producer.publish("order.created", {"pending"})[0].status == ConfirmStatus::stored);
    (void)md::admin_request(f.proxy->stats_endpoint(), {"group", "rm", "ghost"});
  }
  f.proxy.reset();
  f.start();
  const auto groups = md::admin_request(f.proxy->stats_endpoint(), {"group", "ls"});
  CHECK(groups.empty());
  Peer producer(f.front());
  CHECK(producer.publish("user.signup", {"u"})[0].status == ConfirmStatus::unroutable);
}

TEST_CASE("admin commands and stats carry thousands of items", "[proxy][integrity]") {
  // The admin decoder bounded arrays at 16 and maps at 4,096: `dlq replay`
  // (1,000 ids a request), `group ls` past 16 groups and the stats of a
  // stream of 1,024 partitions all failed.
  std::vector<std::string> words{"dlq", "rm"};
  for (int i = 0; i < 5000; ++i) words.push_back(mqkit::MessageId::generate().to_string());
  std::vector<std::string> parsed;
  CHECK(md::detail::parse_request(md::detail::encode_admin_request(words), parsed).empty());
  CHECK(parsed == words);
  md::DeviceStats stats{"stream", {}};
  for (int i = 0; i < 10000; ++i) stats.counters.emplace_back("p" + std::to_string(i), i);
  CHECK(md::detail::decode_stats_reply(md::detail::encode_stats_reply(stats)).counters.size() ==
        10000);
  std::vector<md::AdminRow> rows(5000, md::AdminRow{{"group", "g"}, {"pending", "1"}});
  CHECK(md::detail::decode_rows_reply(md::detail::encode_rows_reply("proxy", rows)).size() == 5000);

  // And through a running proxy: 40 groups listed, 3,000 ids in one `dlq rm`.
  Fixture f;
  f.options.stats = "tcp://127.0.0.1:*";
  for (int i = 0; i < 40; ++i) f.options.groups["g" + std::to_string(i)] = {"#"};
  f.start();
  CHECK(md::admin_request(f.proxy->stats_endpoint(), {"group", "ls"}).size() == 40);
  std::vector<std::string> rm{"dlq", "rm"};
  for (int i = 0; i < 3000; ++i) rm.push_back(mqkit::MessageId::generate().to_string());
  const auto removed = md::admin_request(f.proxy->stats_endpoint(), rm);
  REQUIRE(removed.size() == 1);
  CHECK(removed[0].at(0).second == "0");
}

TEST_CASE("a consumer whose before-ack hook waits keeps heartbeating and keeps its leases",
          "[proxy][integrity]") {
  // Regression (a bridge waiting for its target): the hook ran under the
  // socket's lock with no heartbeat; the proxy took the worker for lost and
  // retried or dead-lettered work that was done.
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.options.heartbeat = 100ms;  // lost after 500 ms of silence
  f.options.ack_timeout = 400ms;
  f.options.retry = mqkit::RetryPolicy::parse("fixed:10ms", 1);
  f.start();
  Peer producer(f.front());
  (void)producer.publish("t", {"1", "2", "3", "4", "5"});
  mqkit::ReliableConsumer consumer(f.back(), {.group = "g", .prefetch = 10});
  consumer.on_before_ack(
      [](std::vector<mqkit::MessageId>&, std::vector<std::pair<mqkit::MessageId, std::string>>&) {
        std::this_thread::sleep_for(1500ms);  // the target is slow to confirm
      });
  std::thread run([&] { consumer.run_auto([](const mqkit::Message&) {}); });
  CHECK(mqkit::test::wait_for([&] { return f.proxy->stats().get("acked") == 5; }, 15s));
  consumer.stop();
  run.join();
  CHECK(f.proxy->stats().get("dead") == 0);
  CHECK(f.proxy->stats().get("retried") == 0);
  CHECK(f.proxy->stats().get("lost_workers") == 0);
}

TEST_CASE("an ack that arrives after its delivery timed out still settles the message",
          "[proxy][integrity]") {
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.options.ack_timeout = 200ms;
  f.options.retry = mqkit::RetryPolicy::parse("fixed:10s", 5);  // waits out the test
  f.start();
  Peer producer(f.front());
  (void)producer.publish("t", {"slow"});
  auto w = f.worker("g", 1);
  auto d = w.deliveries(1);
  REQUIRE(d.size() == 1);
  REQUIRE(mqkit::test::wait_for([&] { return f.proxy->stats().get("retried") == 1; }));
  w.send({.command = Command::ack, .ids = {d[0].id()}});
  CHECK(mqkit::test::wait_for([&] { return f.proxy->stats().get("acked") == 1; }));
  CHECK(mqkit::test::wait_for([&] { return f.proxy->stats().get("pending") == 0; }));
}

TEST_CASE("two groups' dead letters of one message are kept and removed one by one",
          "[proxy][integrity]") {
  // Regression: dead letters were keyed by id alone; the second group's
  // DEAD_LETTER replaced the first's, and a tombstone removed both.
  Fixture f;
  f.options.stats = "tcp://127.0.0.1:*";
  f.options.groups = {{"billing", {"#"}}, {"email", {"#"}}};
  f.start();
  Peer producer(f.front());
  (void)producer.publish("order.created", {"poison"});
  mqkit::MessageId id;
  std::vector<Peer> workers;
  for (const std::string group : {"billing", "email"}) {
    auto& w = workers.emplace_back(f.worker(group, 1));
    auto d = w.deliveries(1);
    REQUIRE(d.size() == 1);
    id = d[0].id();
    w.send({.command = Command::nack,
            .ids = {id},
            .action = NackAction::dead,
            .reason = "fails in " + group});
  }
  REQUIRE(mqkit::test::wait_for([&] { return f.proxy->stats().get("dead") == 2; }));
  REQUIRE(mqkit::test::wait_for(
      [&] { return mqkit::read_spool(f.options.dlq_dir).dead_letters.size() == 2; }));
  std::set<std::string> groups;
  for (const auto& d : mqkit::read_spool(f.options.dlq_dir).dead_letters)
    groups.insert(d.dead_letter->group);
  CHECK(groups == std::set<std::string>{"billing", "email"});
  const auto rows =
      md::admin_request(f.proxy->stats_endpoint(), {"dlq", "rm", id.to_string() + ":billing"});
  CHECK(rows.at(0).at(0).second == "1");
  const auto left = mqkit::read_spool(f.options.dlq_dir).dead_letters;
  REQUIRE(left.size() == 1);
  CHECK(left[0].dead_letter->group == "email");
  CHECK(left[0].dead_letter->last_error == "fails in email");
  // And after a restart (recovery replays the records the same way).
  f.proxy.reset();
  f.start();
  const auto after = mqkit::read_spool(f.options.dlq_dir).dead_letters;
  REQUIRE(after.size() == 1);
  CHECK(after[0].dead_letter->group == "email");
}

TEST_CASE("a message the DLQ cannot take stays pending and is dead-lettered once it can",
          "[proxy][integrity]") {
  // Regression: a failed dead-letter write left the message in limbo:
  // forgotten by its group, pending on disk, counted as dead.
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.options.retry = mqkit::RetryPolicy::parse("fixed:50ms", 3);
  f.options.dlq_max_size = 1;  // full from the start (the main spool has no limit)
  f.start();
  {
    Peer producer(f.front());
    CHECK(producer.publish("t", {"doomed"})[0].status == ConfirmStatus::stored);
    auto w = f.worker("g", 1);
    for (int i = 0; i < 2; ++i) {  // refused by the DLQ: back after the retry delay
      auto d = w.deliveries(1);
      REQUIRE(d.size() == 1);
      CHECK(d[0].payload() == "doomed");
      w.send({.command = Command::nack,
              .ids = {d[0].id()},
              .action = NackAction::dead,
              .reason = "bad"});
    }
    REQUIRE(mqkit::test::wait_for([&] { return f.proxy->stats().get("dead_letter_failed") >= 2; }));
    CHECK(f.proxy->stats().get("dead") == 0);
    CHECK(mqkit::test::wait_for([&] { return f.proxy->stats().get("pending") == 1; }));
  }
  f.proxy.reset();
  f.options.dlq_max_size = 0;
  f.start();
  auto w = f.worker("g", 1);
  auto d = w.deliveries(1);
  REQUIRE(d.size() == 1);
  w.send(
      {.command = Command::nack, .ids = {d[0].id()}, .action = NackAction::dead, .reason = "bad"});
  REQUIRE(mqkit::test::wait_for([&] { return f.proxy->stats().get("dead") == 1; }));
  CHECK(mqkit::test::wait_for([&] { return f.proxy->stats().get("pending") == 0; }));
  f.proxy.reset();
  CHECK(mqkit::read_spool(f.options.dlq_dir).dead_letters.size() == 1);
}

TEST_CASE("a proxy stopped with appends in flight shuts down cleanly", "[proxy][integrity]") {
  // Regression (seen under ASan): the completions the spool's writer thread
  // hands over were destroyed before the spool, whose destructor completes
  // what is still queued into them.
  for (int round = 0; round < 3; ++round) {
    Fixture f;
    f.options.groups = {{"g", {"#"}}};
    f.start();
    Peer producer(f.front());
    std::vector<std::string> frames;
    for (int i = 0; i < 64; ++i)
      frames.push_back(mqkit::encode(mqkit::Envelope::make("t"), std::string(512, 'x')));
    for (int batch = 0; batch < 20; ++batch) producer.send({.command = Command::publish}, frames);
    // Usually some are queued or being synced by now; the stop must be
    // clean whatever the moment.
    (void)mqkit::test::wait_for([&] { return f.proxy->stats().get("published") > 64; }, 2s);
    f.proxy.reset();
  }
}

TEST_CASE("a lost worker's messages it had not started cost no attempt", "[proxy][integrity]") {
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.options.heartbeat = 100ms;
  f.options.ack_timeout = 60s;  // only the missed heartbeats bring them back
  f.start();
  Peer producer(f.front());
  (void)producer.publish("t", {"handling", "waiting 1", "waiting 2"});
  auto lost = f.worker("g", 3);  // never heartbeats
  const auto held = lost.deliveries(3);
  REQUIRE(held.size() == 3);
  // It works on the first; the two others wait their turn in it.
  lost.send({.command = Command::in_progress,
             .ids = {held[0].id(), held[1].id(), held[2].id()},
             .started = 1});
  auto next = f.worker("g", 3);
  std::map<std::string, std::uint32_t> attempts;
  for (int i = 0; i < 100 && attempts.size() < 3; ++i) {
    next.send({.command = Command::heartbeat});
    if (auto d = next.receive(50ms); d && d->first.command == Command::deliver)
      for (const auto& m : d->second) attempts[std::string(m.payload())] = m.envelope.attempt;
  }
  CHECK(attempts ==
        std::map<std::string, std::uint32_t>{{"handling", 2}, {"waiting 1", 1}, {"waiting 2", 1}});
}

TEST_CASE(
    "a pending message whose stored record is damaged on disk is neither delivered nor "
    "dead-lettered empty: it stays pending and is counted",
    "[proxy][integrity]") {
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.options.frame_memory = 0;  // every delivery reads its frame back from the spool
  f.start();
  Peer producer(f.front());
  (void)producer.publish("t", {"first-message", "damaged-message", "third-message"});
  // One byte of the middle message's payload, flipped on disk.
  bool flipped = false;
  for (const auto& entry : std::filesystem::directory_iterator(f.options.spool_dir)) {
    if (!entry.is_regular_file()) continue;
    std::fstream file(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(file), {}};
    const auto at = bytes.find("damaged-message");
    if (at == std::string::npos) continue;
    file.clear();
    file.seekp(static_cast<std::streamoff>(at));
    file.put('D');
    flipped = true;
  }
  REQUIRE(flipped);
  auto w = f.worker("g", 10);
  std::multiset<std::string> seen;
  for (const auto& m : w.deliveries(2)) {
    seen.emplace(m.payload());
    w.send({.command = Command::ack, .ids = {m.id()}});
  }
  CHECK(seen == std::multiset<std::string>{"first-message", "third-message"});
  // Read again after a while, still damaged: still never sent.
  REQUIRE(mqkit::test::wait_for([&] { return f.proxy->stats().get("unreadable") >= 2; }));
  CHECK_FALSE(w.receive(300ms));
  REQUIRE(mqkit::test::wait_for([&] { return f.proxy->stats().get("acked") == 2; }));
  CHECK(f.proxy->stats().get("dead") == 0);
}

// A proxy whose spool holds `first` or `big` but not both (each record its
// own segment, so an acked message's space comes back), and `small`, which
// fits beside `first`.
struct NearlyFull {
  Fixture f;
  const std::string first = mqkit::encode(mqkit::Envelope::make("t"), std::string(4000, 'a'));
  const std::string big = mqkit::encode(mqkit::Envelope::make("t"), std::string(4000, 'b'));
  const std::string small = mqkit::encode(mqkit::Envelope::make("t"), "c");
  NearlyFull() {
    f.options.groups = {{"g", {"#"}}};
    f.options.spool.segment_size = 1;
    f.options.spool.max_size = big.size() + 1500;
    f.start();
  }
};

TEST_CASE(
    "after a full answer a producer's later smaller message is refused too until the refused one "
    "comes again, and then both are stored in their order",
    "[proxy][integrity][order]") {
  // Each record its own segment, so an acked message's segment is deleted
  // and its space comes back. `big` never fits beside `first`; it fits once
  // `first` is acked.
  NearlyFull nearly_full;
  auto& f = nearly_full.f;
  const auto& [first, big, small] = std::tie(nearly_full.first, nearly_full.big, nearly_full.small);
  Peer producer(f.front());
  const auto answers = producer.publish_in_order({first, big, small});
  CHECK(answers[0].status == ConfirmStatus::stored);
  CHECK(answers[1].status == ConfirmStatus::full);
  // It fits, but it must not be stored before `big`.
  CHECK(answers[2].status == ConfirmStatus::full);
  CHECK(producer.publish_in_order({small})[0].status == ConfirmStatus::full);

  auto w = f.worker("g", 10);
  ack_next(w, std::string(4000, 'a'));
  // The producer's round: the refused one first, then the rest, until space is back.
  std::vector<Confirmation> round;
  for (int i = 0; i < 100; ++i) {
    round = producer.publish_in_order({big, small});
    if (round[0].status != ConfirmStatus::full) break;
    std::this_thread::sleep_for(50ms);
  }
  CHECK(round[0].status == ConfirmStatus::stored);
  CHECK(round[1].status == ConfirmStatus::stored);
  const auto delivered = w.deliveries(2);
  REQUIRE(delivered.size() == 2);
  CHECK(delivered[0].payload() == std::string(4000, 'b'));
  CHECK(delivered[1].payload() == "c");
}

TEST_CASE("a producer that never sends its refused message again is refused for a few seconds only",
          "[proxy][integrity][order]") {
  Fixture f;
  f.options.groups = {{"g", {"#"}}};
  f.options.heartbeat = 100ms;
  const std::string big = mqkit::encode(mqkit::Envelope::make("t"), std::string(4000, 'b'));
  const std::string small = mqkit::encode(mqkit::Envelope::make("t"), "c");
  f.options.spool.max_size = 2000;
  f.start();
  Peer producer(f.front());
  const auto answers = producer.publish_in_order({big, small});
  CHECK(answers[0].status == ConfirmStatus::full);
  CHECK(answers[1].status == ConfirmStatus::full);
  // Another producer is not held back.
  Peer other(f.front());
  CHECK(other.publish("t", {"other"})[0].status == ConfirmStatus::stored);
  // Bounded: 5 s after the refusal the producer's new messages go in again.
  std::vector<Confirmation> later;
  for (int i = 0; i < 80; ++i) {
    later = producer.publish_in_order({small});
    if (later[0].status != ConfirmStatus::full) break;
    std::this_thread::sleep_for(100ms);
  }
  CHECK(later[0].status == ConfirmStatus::stored);
}

// Found in review: `dlq replay` publishes a copy (confirmed under interval
// before its sync), then removes the dead letter (a tombstone the DLQ
// syncs). A power loss in between kept the tombstone and took the copy:
// the message was in neither. `dlq rm` now syncs the main spool first.
TEST_CASE(
    "under fsync interval a power loss after a replay's dlq rm keeps the dead letter or its copy",
    "[proxy][crash]") {
  mqkit::test::FaultEnv env;
  Fixture f;
  f.options.stats = "tcp://127.0.0.1:*";
  f.options.spool.env = &env;
  f.options.spool.durability = mqkit::Durability::interval;
  f.options.spool.sync_interval = 1h;
  f.options.groups = {{"billing", {"#"}}};
  f.start();
  Peer producer(f.front());
  const mqkit::MessageId id = dead_letter_one(f, producer);
  // What `mqkit dlq replay` does: the copy to the group, confirmed; then dlq rm.
  REQUIRE(producer.publish("order.created", {"copy of m1"}, "billing")[0].status ==
          ConfirmStatus::stored);
  const auto removed =
      md::admin_request(f.proxy->stats_endpoint(), {"dlq", "rm", id.to_string() + ":billing"});
  REQUIRE(removed.at(0).at(0).second == "1");
  env.power_loss();
  f.proxy.reset();
  mqkit::SpoolOptions dlq_options;
  dlq_options.dead_letters = true;
  const auto letters = mqkit::Spool(f.options.dlq_dir, dlq_options).dead_letters();
  const auto main = mqkit::read_spool(f.options.spool_dir);
  const std::uint64_t pending = main.pending.count("billing") ? main.pending.at("billing") : 0;
  INFO("dead letters " << letters.size() << ", pending for billing in the main spool " << pending);
  CHECK(letters.empty());  // removed, for good
  CHECK(pending == 1);     // and the copy kept
}

// ---- the publish intake (found in review) ----

// The latch is released when the refused id comes again from the latched
// producer, even when the answer is `duplicate` (stored meanwhile from
// another connection). 6942ddb answered such a duplicate in the intake
// without telling the proxy, and the latch stayed until its 5 s timeout.
TEST_CASE(
    "a latched producer's refused id, stored meanwhile by another connection, "
    "releases the latch when it comes again",
    "[proxy][integrity][order]") {
  NearlyFull nearly_full;
  auto& f = nearly_full.f;
  const auto& [first, big, small] = std::tie(nearly_full.first, nearly_full.big, nearly_full.small);
  Peer producer(f.front());
  const auto t0 = std::chrono::steady_clock::now();
  const auto answers = producer.publish_in_order({first, big});
  REQUIRE(answers[0].status == ConfirmStatus::stored);
  REQUIRE(answers[1].status == ConfirmStatus::full);
  auto w = f.worker("g", 10);
  ack_next(w, std::string(4000, 'a'));
  Peer other(f.front());
  std::vector<Confirmation> round;
  for (int i = 0; i < 60; ++i) {
    round = other.publish_in_order({big});
    if (round[0].status != ConfirmStatus::full) break;
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE(round[0].status == ConfirmStatus::stored);
  CHECK(producer.publish_in_order({big})[0].status == ConfirmStatus::duplicate);
  const auto next = producer.publish_in_order({small});
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  INFO("elapsed ms " << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
  REQUIRE(elapsed < 4s);  // before the latch's 5 s timeout
  CHECK(next[0].status == ConfirmStatus::stored);
}

// IdTable with non-trivial values (what the intake keeps in progress):
// random inserts, appends to a value's vector and erases (backward shift)
// against std::unordered_map, with a table small enough to collide.
TEST_CASE("IdTable keeps strings and vectors right through backward-shift erases", "[detail]") {
  struct V {
    std::string producer;
    std::vector<std::string> resent_by;
  };
  mqkit::detail::IdTable<V> table;
  std::unordered_map<mqkit::MessageId, V> model;
  std::vector<mqkit::MessageId> ids;
  for (int i = 0; i < 3000; ++i) ids.push_back(mqkit::MessageId::generate());
  std::mt19937 rng(7);
  for (int step = 0; step < 200000; ++step) {
    const auto& id = ids[rng() % ids.size()];
    const int op = rng() % 4;
    if (op == 0) {
      V v{std::string(rng() % 40, 'p') + std::to_string(step), {}};
      const bool made = table.try_emplace(id, V{v}).second;
      const bool made_model = model.try_emplace(id, v).second;
      REQUIRE(made == made_model);
    } else if (op == 1) {
      auto it = table.find(id);
      auto m = model.find(id);
      REQUIRE((it != table.end()) == (m != model.end()));
      if (m != model.end()) {
        const std::string who = "r" + std::to_string(step) + std::string(rng() % 30, 'x');
        it->second.resent_by.push_back(who);
        m->second.resent_by.push_back(who);
      }
    } else if (op == 2) {
      auto it = table.find(id);
      if (it != table.end()) {
        V done = std::move(it->second);
        table.erase(it);
        auto m = model.find(id);
        REQUIRE(m != model.end());
        REQUIRE(done.producer == m->second.producer);
        REQUIRE(done.resent_by == m->second.resent_by);
        model.erase(m);
      } else {
        REQUIRE(model.count(id) == 0);
      }
    } else {
      REQUIRE(table.size() == model.size());
    }
  }
  std::size_t seen = 0;
  for (auto& slot : table) {
    ++seen;
    auto m = model.find(slot.first);
    REQUIRE(m != model.end());
    CHECK(slot.second.producer == m->second.producer);
    CHECK(slot.second.resent_by == m->second.resent_by);
  }
  CHECK(seen == model.size());
}

// A tombstone that could not be written was answered "removed", and the
// dead letter came back after its replay (the checker saw the same copy
// replayed twice). Now `dlq rm` says it failed, and the dead letter stays.
TEST_CASE("dlq rm whose tombstone cannot be written says so and keeps the dead letter",
          "[proxy][integrity]") {
  mqkit::test::FaultEnv env;
  Fixture f;
  f.options.stats = "tcp://127.0.0.1:*";
  f.options.spool.env = &env;
  f.options.groups = {{"billing", {"#"}}};
  f.start();
  Peer producer(f.front());
  const mqkit::MessageId id = dead_letter_one(f, producer);
  env.inject({.op = mqkit::test::FaultEnv::Op::write, .error = EIO, .path_part = "dlq"});
  CHECK_THROWS_WITH(
      md::admin_request(f.proxy->stats_endpoint(), {"dlq", "rm", id.to_string() + ":billing"}),
      Catch::Contains("could not write a tombstone"));
  // Tried again once the disk is well: removed, for good.
  env.clear_faults();
  const auto removed =
      md::admin_request(f.proxy->stats_endpoint(), {"dlq", "rm", id.to_string() + ":billing"});
  CHECK(removed.at(0).at(0).second == "1");
  f.proxy.reset();
  mqkit::SpoolOptions dlq_options;
  dlq_options.dead_letters = true;
  CHECK(mqkit::Spool(f.options.dlq_dir, dlq_options).dead_letters().empty());
}

// ---- per-group settings and pause (issue 17) ----

namespace {

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The `group ls` row of `name`, as column -> value.
std::map<std::string, std::string> group_row(Fixture& f, const std::string& name) {
  for (const auto& row : md::admin_request(f.proxy->stats_endpoint(), {"group", "ls"})) {
    std::map<std::string, std::string> columns(row.begin(), row.end());
    if (columns["group"] == name) return columns;
  }
  FAIL("no group " << name);
  return {};
}

}  // namespace

TEST_CASE("a group's own ack timeout is in its ATTACHED and redelivers sooner than the proxy's",
          "[proxy][groups]") {
  Fixture f;
  f.options.ack_timeout = 60s;
  f.options.groups = {{"fast", {"#"}}, {"slow", {"#"}}};
  f.options.group_settings["fast"].ack_timeout = 300ms;
  f.start();
  Peer producer(f.front());
  (void)producer.publish("t", {"job"});
  Peer silent(f.back());
  silent.send({.command = Command::attach, .group = "fast", .credit = 1});
  auto attached = silent.receive();
  REQUIRE(attached);
  CHECK(attached->first.ack_timeout_ms == 300);
  auto d = silent.receive();
  REQUIRE(d);
  REQUIRE(d->first.command == Command::deliver);
  auto slow = f.worker("slow", 1);
  auto slow_delivery = slow.receive();
  REQUIRE(slow_delivery);  // held and never acked: the slow group's timeout is a minute
  auto other = f.worker("fast", 1);
  auto again = other.receive(10s);
  REQUIRE(again);
  CHECK(again->second[0].id() == d->second[0].id());
  CHECK(again->second[0].envelope.attempt == 2);
  CHECK(f.proxy->stats().get("group.slow.retried") == 0);
}

TEST_CASE("a paused group's in-flight deliveries finish and nothing new goes out until resumed",
          "[proxy][groups]") {
  Fixture f;
  f.options.stats = "tcp://127.0.0.1:*";
  f.options.groups = {{"g", {"#"}}};
  f.start();
  Peer producer(f.front());
  (void)producer.publish("t", {"first"});
  auto w = f.worker("g", 10);
  auto d = w.receive();
  REQUIRE(d);
  (void)md::admin_request(f.proxy->stats_endpoint(), {"group", "pause", "g"});
  CHECK(group_row(f, "g")["state"] == "paused");
  w.send({.command = Command::ack, .ids = {d->second[0].id()}});  // in flight: it finishes
  REQUIRE(mqkit::test::wait_for([&] { return f.proxy->stats().get("acked") == 1; }));
  CHECK(producer.publish("t", {"second", "third"})[0].status == ConfirmStatus::stored);
  CHECK_FALSE(w.receive(700ms));  // stored, not delivered
  CHECK(group_row(f, "g")["pending"] == "2");
  (void)md::admin_request(f.proxy->stats_endpoint(), {"group", "resume", "g"});
  CHECK(w.deliveries(2).size() == 2);
  CHECK_THROWS_WITH(md::admin_request(f.proxy->stats_endpoint(), {"group", "pause", "nope"}),
                    Catch::Contains("no group named 'nope'"));
}

TEST_CASE("a group's settings and pause are kept in GROUPS and outlive a restart without them",
          "[proxy][groups][integrity]") {
  Fixture f;
  f.options.stats = "tcp://127.0.0.1:*";
  f.options.groups = {{"billing", {"order.created"}}, {"email", {"order.#"}}};
  f.options.group_settings["billing"].set("max_attempts", "2");
  f.options.group_settings["billing"].set("backoff", "fixed:10ms");
  f.start();
  (void)md::admin_request(f.proxy->stats_endpoint(), {"group", "pause", "email"});
  CHECK(file_text(f.dir.file("spool") + "/GROUPS") ==
        "billing order.created\nbilling: max_attempts=2 backoff=fixed:10ms\n"
        "email order.#\nemail: paused\n");
  f.proxy.reset();
  f.options.groups.clear();
  f.options.group_settings.clear();
  f.start();
  auto billing = group_row(f, "billing");
  CHECK(billing["max_attempts"] == "2");
  CHECK(billing["backoff"] == "fixed:10ms");
  CHECK(billing["own_settings"] == "max_attempts,backoff");
  CHECK(billing["state"] == "active");
  auto email = group_row(f, "email");
  CHECK(email["max_attempts"] == "3");  // the proxy's (Fixture: fixed:50ms, 3)
  CHECK(email["own_settings"] == "-");
  CHECK(email["state"] == "paused");
  // ... and acts on them: two deliveries, then the DLQ.
  Peer producer(f.front());
  (void)producer.publish("order.created", {"poison"});
  auto w = f.worker("billing", 1);
  for (std::uint32_t attempt = 1; attempt <= 2; ++attempt) {
    auto d = w.receive();
    REQUIRE(d);
    CHECK(d->second[0].envelope.attempt == attempt);
    w.send({.command = Command::nack, .ids = {d->second[0].id()}, .reason = "no"});
  }
  REQUIRE(mqkit::test::wait_for([&] { return f.proxy->stats().get("group.billing.dead") == 1; }));
  auto e = f.worker("email", 1);
  CHECK_FALSE(e.receive(500ms));  // still paused

  // Configured again, the configuration wins; a pause is kept.
  f.proxy.reset();
  f.options.groups = {{"billing", {"order.created"}}, {"email", {"order.#"}}};
  f.options.group_settings["email"].set("ack_timeout", "9s");
  f.start();
  CHECK(group_row(f, "billing")["own_settings"] == "-");
  CHECK(group_row(f, "billing")["max_attempts"] == "3");
  CHECK(group_row(f, "email")["ack_timeout"] == "9s");
  CHECK(group_row(f, "email")["state"] == "paused");
}

TEST_CASE("a start refused for a bad GROUPS line leaves the file as it was",
          "[proxy][groups][integrity]") {
  Fixture f;
  f.options.groups = {{"a", {"#"}}, {"c", {"#"}}};
  f.start();
  {
    Peer producer(f.front());
    CHECK(producer.publish("t", {"m"})[0].status == ConfirmStatus::stored);
  }
  f.proxy.reset();
  const std::string groups = f.dir.file("spool") + "/GROUPS";
  const std::string edited = "a #\nb$ #\nc #\n";  // a hand edit gone wrong
  mqkit::test::write_file(groups, edited);
  f.options.groups.clear();
  CHECK_THROWS_WITH(f.start(), Catch::Contains("group name 'b$'"));
  CHECK(file_text(groups) == edited);  // not rewritten with 'a' alone
  mqkit::test::write_file(groups, "a #\nc #\n");
  f.start();
  auto w = f.worker("c", 1);
  ack_next(w, "m");  // c's message was not taken for a deleted group's
}

TEST_CASE("a malformed settings line in GROUPS is refused naming its line", "[proxy][groups]") {
  Fixture f;
  std::filesystem::create_directories(f.dir.file("spool"));
  mqkit::test::write_file(f.dir.file("spool") + "/GROUPS", "a #\na: max_attempts=lots\n");
  CHECK_THROWS_WITH(f.start(),
                    Catch::Contains("GROUPS:2: max_attempts: must be a positive integer"));
  mqkit::test::write_file(f.dir.file("spool") + "/GROUPS", "a #\nb: paused\n");
  CHECK_THROWS_WITH(f.start(),
                    Catch::Contains("GROUPS:2: settings for group 'b', which no line declares"));
}

// ---- scheduled messages (issue 17) ----

namespace {

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// Publishes one message per (payload, not_before) and returns the confirmations.
std::vector<Confirmation> publish_at(Peer& producer,
                                     const std::vector<std::pair<std::string, std::uint64_t>>& m) {
  std::vector<std::string> frames;
  for (const auto& [payload, at] : m) {
    auto e = mqkit::Envelope::make("t");
    e.not_before = at;
    frames.push_back(mqkit::encode(e, payload));
  }
  producer.send({.command = Command::publish}, frames);
  std::vector<Confirmation> all;
  while (all.size() < m.size()) {
    auto reply = producer.receive();
    REQUIRE(reply);
    all.insert(all.end(), reply->first.confirmations.begin(), reply->first.confirmations.end());
  }
  return all;
}

}  // namespace

TEST_CASE("a scheduled message is stored at once and delivered no earlier, also after a restart",
          "[proxy][schedule]") {
  Fixture f;
  f.options.stats = "tcp://127.0.0.1:*";
  f.options.groups = {{"g", {"#"}}, {"h", {"#"}}};
  f.start();
  const std::uint64_t at = wall_ms() + 1500;
  {
    Peer producer(f.front());
    const auto confirmed = publish_at(producer, {{"later", at}, {"now", 0}, {"past", 1}});
    for (const auto& c : confirmed) CHECK(c.status == ConfirmStatus::stored);
    CHECK(group_row(f, "g")["scheduled"] == "1");
    CHECK(group_row(f, "g")["pending"] == "3");
  }
  SECTION("running") {}
  SECTION("across a restart") {
    f.proxy.reset();
    f.start();
    CHECK(group_row(f, "h")["scheduled"] == "1");
  }
  auto w = f.worker("g", 10);
  std::set<std::string> first;
  for (const auto& m : w.deliveries(2)) {
    first.insert(std::string(m.payload()));
    w.send({.command = Command::ack, .ids = {m.id()}});
  }
  CHECK(first == std::set<std::string>{"now", "past"});
  auto later = w.deliveries(1, 10s);
  REQUIRE(later.size() == 1);
  CHECK(wall_ms() >= at);  // never before its time
  CHECK(later[0].payload() == "later");
  CHECK(later[0].envelope.not_before == at);
  CHECK(group_row(f, "g")["scheduled"] == "0");
}

TEST_CASE("group rm takes a group's scheduled messages with it", "[proxy][schedule]") {
  Fixture f;
  f.options.stats = "tcp://127.0.0.1:*";
  f.options.groups = {{"g", {"#"}}};
  f.start();
  Peer producer(f.front());
  const auto stored =
      publish_at(producer, {{"a", wall_ms() + 600'000}, {"b", wall_ms() + 600'000}});
  const auto rows = md::admin_request(f.proxy->stats_endpoint(), {"group", "rm", "g"});
  REQUIRE(rows.size() == 1);
  CHECK(std::map<std::string, std::string>(rows[0].begin(), rows[0].end())["removed_pending"] ==
        "2");
  f.proxy.reset();  // its acks are written by then
  mqkit::Spool spool(f.dir.file("spool"));
  for (const auto& c : stored) CHECK_FALSE(spool.holds(c.id));
}
