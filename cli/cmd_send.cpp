// `mqkit send`: one message per line of stdin or --file, or --count generated
// messages, to a work queue (PUSH) or, with --pub, to subscribers (PUB).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>

#include "commands.hpp"
#include "curve_flags.hpp"
#include "message_source.hpp"
#include "mqkit/duration.hpp"
#include "mqkit/error.hpp"
#include "mqkit/producer.hpp"
#include "mqkit/publisher.hpp"
#include "mqkit/reliable_producer.hpp"
#include "mqkit/stop.hpp"
#include "progress.hpp"

namespace mqkit::cli {
namespace {

struct SendOptions {
  CurveFlags curve;
  std::string to;
  std::string proxy;
  std::string stream;
  std::string key;
  std::size_t window = 1000;
  bool pub = false;
  bool bind = false;
  std::string topic;
  std::string file;
  std::uint64_t count = 0;
  std::string size;
  double rate = 0;
  std::string wait = "5s";
  std::string timeout = "60s";
  std::string delay;  // --delay DUR / --at TIME: scheduled (--proxy only)
  std::string at;
  SocketOptions socket;
};

// How long a stopped send still waits for the confirms already due.
constexpr std::chrono::milliseconds kDrainAfterStop{5000};

// Waits for the confirms of everything sent, up to `timeout`; a stop signal
// shortens what is left of the wait to kDrainAfterStop. Returns how many
// are still unconfirmed.
std::size_t drain(ReliableProducer& producer, std::chrono::milliseconds timeout) {
  using std::chrono::milliseconds;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto left = [&] {
    return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(
                                         deadline - std::chrono::steady_clock::now()));
  };
  while (producer.unconfirmed() > 0 && !stop_requested() && left() > milliseconds(0))
    producer.flush(std::min(left(), milliseconds(100)));
  if (stop_requested()) producer.flush(std::min(left(), kDrainAfterStop));
  return producer.unconfirmed();
}

// Through the reliable proxy or a stream device (the same PUBLISH/CONFIRM
// contract): pipelined, every message confirmed or counted. What was read
// leaves as soon as the input has nothing more ready, so a slow input
// (`tail -f`) is not held back for a full batch; meanwhile confirms and
// re-sends go on.
int send_confirmed(const SendOptions& o, MessageSource& source) {
  const std::string& device = o.proxy.empty() ? o.stream : o.proxy;
  ReliableProducerOptions options;
  options.socket = o.socket;
  options.window = o.window;
  options.timeout = parse_duration(o.timeout);
  if (!o.delay.empty()) options.delay = parse_duration(o.delay);
  ReliableProducer producer(device, options);
  Envelope envelope = Envelope::make(o.topic);
  if (!o.key.empty()) envelope.key = o.key;
  if (!o.at.empty()) envelope.not_before = static_cast<std::uint64_t>(*parse_utc_time(o.at));
  std::map<PublishStatus, std::uint64_t> counts;
  std::string last_problem;
  std::uint64_t sent = 0;
  std::string payload;
  Progress progress("send", "sent", o.count, true, o.count > 0);
  bool input_done = false;
  while (!stop_requested()) {
    if (!source.ready()) {
      producer.flush(std::chrono::milliseconds(0));  // the partial batch leaves now
      while (!stop_requested() && !source.ready(std::chrono::milliseconds(50)))
        producer.flush(std::chrono::milliseconds(0));  // confirms and re-sends meanwhile
      if (stop_requested()) break;
    }
    if (!source.next(payload)) {
      input_done = !stop_requested();
      break;
    }
    envelope.id = MessageId::generate();
    producer.send_async(envelope, payload, [&](const PublishResult& r) {
      if (r.ok()) progress.confirm();
      ++counts[r.status];
      if (!r.ok()) last_problem = std::string(to_string(r.status)) + ": " + r.reason;
    });
    ++sent;
    progress.advance();
  }
  const std::size_t left = drain(producer, parse_duration(o.timeout));
  progress.finish();
  const std::uint64_t ok = counts[PublishStatus::stored] + counts[PublishStatus::duplicate];
  std::string summary = std::to_string(ok) + " of " + std::to_string(sent) +
                        " messages confirmed by " + device + " (" +
                        std::to_string(counts[PublishStatus::stored]) + " stored, " +
                        std::to_string(counts[PublishStatus::duplicate]) + " duplicate)";
  if (ok != sent)
    summary += "; " + std::to_string(sent - ok - left) + " refused" +
               (last_problem.empty() ? "" : " (last: " + last_problem + ")") + ", " +
               std::to_string(left) + " unconfirmed";
  if (const auto why = producer.connection_problem();
      ok != sent && !why.empty() && last_problem.find(why) == std::string::npos)
    summary += "; " + why;
  if (!input_done) summary += "; stopped before the end of the input";
  report("send", summary);
  return ok == sent && input_done ? 0 : 1;
}

int run_send(SendOptions o) {
  stop_on_signals();
  apply_curve_client_flags(o.curve, o.socket.security);
  if (!o.to.empty() + !o.proxy.empty() + !o.stream.empty() != 1)
    throw UsageError(
        "give one of --to EP (work queue, or pub with --pub), --proxy EP (reliable) or "
        "--stream EP (log)");
  if (!o.key.empty() && o.stream.empty() && o.proxy.empty())
    throw UsageError("--key goes with --stream (it picks the partition) or --proxy");
  if (!o.delay.empty() && !o.at.empty()) throw UsageError("use either --delay or --at, not both");
  if ((!o.delay.empty() || !o.at.empty()) && !o.stream.empty())
    throw UsageError(
        "--delay and --at do not go with --stream: a stream keeps records as they are, in "
        "order; schedule messages through a proxy (--proxy)");
  if ((!o.delay.empty() || !o.at.empty()) && o.proxy.empty())
    throw UsageError(
        "--delay and --at need --proxy: only the reliable proxy holds a message "
        "back until its time");
  if (o.count > 0 && o.size.empty()) throw UsageError("--count needs --size BYTES");
  if (!o.size.empty() && o.count == 0) throw UsageError("--size needs --count N");
  if (o.count > 0 && !o.file.empty()) throw UsageError("use either --file or --count, not both");
  auto source = o.count > 0 ? MessageSource::generated(o.count, parse_size(o.size))
                            : MessageSource::lines(o.file);
  source.set_rate(o.rate);

  // Messages still queued when we finish get up to --timeout to leave.
  const auto timeout = parse_duration(o.timeout);
  o.socket.send_timeout = timeout;
  o.socket.linger = timeout;
  // Queue only to peers that are really there: a message is never counted as
  // sent while it waits for a connection that may never come.
  o.socket.immediate = true;
  if (!o.proxy.empty() || !o.stream.empty()) return send_confirmed(o, source);
  const Endpoint endpoint{o.to, o.bind ? Endpoint::Mode::bind : Endpoint::Mode::connect};

  std::uint64_t sent = 0;
  std::string payload;
  Progress progress("send", "sent", o.count, false, o.count > 0);
  if (o.pub) {
    Publisher publisher(endpoint, PublisherOptions{o.socket, false});
    if (!publisher.wait_for_subscriber(o.topic, parse_duration(o.wait)) && !stop_requested())
      report("send", "no subscriber for topic '" + o.topic + "' reached " + o.to + " within " +
                         o.wait + "; sending anyway (unsubscribed messages are not kept)");
    while (!stop_requested() && source.next(payload))
      if (publisher.send(o.topic, payload)) {
        ++sent;
        progress.advance();
      }
  } else {
    Producer producer(endpoint, o.socket);
    try {
      while (!stop_requested() && source.next(payload)) {
        (void)producer.send(o.topic, payload);
        ++sent;
        progress.advance();
      }
    } catch (const Error& e) {
      if (e.code() != errc::timeout) throw;
      throw Error(errc::timeout, "nothing took a message at " + o.to + " for " + o.timeout +
                                     " (is a streamer or worker running there?); " +
                                     std::to_string(sent) + " sent before that");
    }
  }
  progress.finish();
  report("send",
         "sent " + std::to_string(sent) + " message" + (sent == 1 ? "" : "s") + " to " + o.to);
  return stop_requested() ? 1 : 0;
}

}  // namespace

void setup_send(CLI::App& app, Runner& runner) {
  auto* sub = app.add_subcommand(
      "send", "Send one message per line of stdin (or --file), or --count generated messages");
  auto o = std::make_shared<SendOptions>();
  sub->add_option("--to", o->to, "Endpoint to connect to, e.g. tcp://127.0.0.1:5557");
  sub->add_option("--proxy", o->proxy,
                  "Send through a reliable proxy (its --front endpoint); exit 0 only when every "
                  "message was confirmed stored");
  sub->add_option("--stream", o->stream,
                  "Append to a stream device (its --front endpoint); exit 0 only when every "
                  "record was confirmed stored");
  sub->add_option("--key", o->key,
                  "Ordering key of every message: with --stream, records of one key go to one "
                  "partition, in order");
  sub->add_option("--delay", o->delay,
                  "With --proxy: schedule every message DUR from now (e.g. 30s, 24h): confirmed "
                  "stored at once, delivered to each group no earlier, across restarts")
      ->check(duration_validator());
  sub->add_option("--at", o->at,
                  "With --proxy: schedule every message for TIME, RFC 3339 (e.g. "
                  "2026-12-01T08:00:00Z or 2026-12-01T09:00:00+01:00)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            return parse_utc_time(v) && *parse_utc_time(v) > 0
                       ? std::string()
                       : "'" + v + "' is not an RFC 3339 time, e.g. 2026-12-01T08:00:00Z";
          },
          "TIME"));
  sub->add_option("--window", o->window,
                  "With --proxy or --stream: unconfirmed messages in flight (default 1000)")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--pub", o->pub, "Publish (PUB) instead of pushing to a work queue (PUSH)");
  sub->add_flag("--bind", o->bind, "Bind --to instead of connecting (peer to peer, no device)");
  sub->add_option("--topic", o->topic, "Topic of every message (default: empty)");
  sub->add_option("--file", o->file, "Read lines from this file instead of stdin")
      ->check(CLI::ExistingFile);
  sub->add_option("--count", o->count, "Send N generated messages instead of lines")
      ->check(CLI::PositiveNumber);
  sub->add_option("--size", o->size, "Size of each generated message, e.g. 100 or 1KiB")
      ->check(size_validator());
  sub->add_option("--rate", o->rate, "Send at most R messages per second (default: unpaced)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--wait", o->wait,
                  "With --pub: wait up to DUR for a matching subscriber before sending "
                  "(default 5s)")
      ->check(duration_validator());
  sub->add_option("--timeout", o->timeout,
                  "Give up when no peer takes a message for DUR; also how long queued messages "
                  "may take to leave at exit (default 60s)")
      ->check(duration_validator());
  add_socket_options(*sub, o->socket);
  add_curve_client_flags(*sub, o->curve);
  sub->footer(
      "Each line is one message, without its newline. With --proxy or --stream, lines leave as "
      "soon as the input has no more ready (up to 64 in one batch). Prints how many were sent "
      "on stderr.\n"
      "SIGINT/SIGTERM: nothing more is read or sent; with --proxy or --stream, confirms already "
      "due are awaited up to 5s more.\n"
      "Exit: 0 sent, 1 runtime error (no peer, stopped), 2 usage error.");
  sub->callback([&runner, o] { runner = [o] { return run_send(*o); }; });
}

}  // namespace mqkit::cli
