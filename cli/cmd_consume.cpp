// `mqkit consume`: receive from a work queue (PULL) or, with --sub, from
// publishers (SUB); print each payload on its own line, or as JSON, or run a
// command per message.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "commands.hpp"
#include "curve_flags.hpp"
#include "exec_command.hpp"
#include "mqkit/error.hpp"
#include "mqkit/reliable_consumer.hpp"
#include "mqkit/stop.hpp"
#include "mqkit/stream_consumer.hpp"
#include "mqkit/subscriber.hpp"
#include "mqkit/worker.hpp"
#include "progress.hpp"
#include "text_output.hpp"

namespace mqkit::cli {
namespace {

struct ConsumeOptions {
  CurveFlags curve;
  std::string from;
  std::string proxy;
  std::string group;
  std::string stream;
  std::string name;
  std::uint32_t prefetch = 0;  // 0: 100 with --proxy, 1000 with --stream
  bool sub = false;
  bool bind = false;
  std::vector<std::string> topics;
  bool json = false;
  std::string exec;
  std::uint64_t count = 0;
  SocketOptions socket;
};

// Runs --exec for one message: payload on stdin, its fields in the environment.
int exec_for(const std::string& command, const Message& m) {
  return run_command(command, m.payload(),
                     {{"MQKIT_ID", m.id().to_string()},
                      {"MQKIT_TOPIC", m.topic()},
                      {"MQKIT_ATTEMPT", std::to_string(m.envelope.attempt)}});
}

// Writes one line and flushes; false when stdout is gone (e.g. `| head`).
bool write_line(const std::string& line) {
  return std::fwrite(line.data(), 1, line.size(), stdout) == line.size() &&
         std::fputc('\n', stdout) != EOF && std::fflush(stdout) == 0;
}

// `--count N` on a terminal: a progress line on stderr, unless the payloads
// go to that same terminal (stdout) and would be torn by it.
Progress count_progress(const ConsumeOptions& o) {
  return {"consume", "consumed", o.count, false,
          o.count > 0 && (!o.exec.empty() || ::isatty(STDOUT_FILENO) != 1)};
}

// As a worker of a proxy group: ack once printed, or once --exec exits 0.
int consume_via_proxy(const ConsumeOptions& o) {
  if (o.group.empty()) throw UsageError("--proxy needs --group NAME");
  ReliableConsumerOptions options{o.group, o.topics, o.prefetch > 0 ? o.prefetch : 100,
                                  !o.exec.empty(), o.socket};
  ReliableConsumer consumer(o.proxy, options);
  std::uint64_t acked = 0;
  auto progress = count_progress(o);
  consumer.run([&](const Message& m) {
    Outcome outcome = Outcome::ack;
    if (!o.exec.empty()) {
      const int status = exec_for(o.exec, m);
      if (status != 0)
        throw std::runtime_error("command exited with status " + std::to_string(status));
    } else if (!write_line(o.json ? message_json(m) : escape_line(m.payload()))) {
      consumer.stop();
      return Outcome::retry;  // not written: let another worker have it
    }
    progress.advance();
    if (o.count > 0 && ++acked >= o.count) consumer.stop();
    return outcome;
  });
  return 0;
}

// As a reader of a stream: alone, or sharing the partitions under --name.
// A record is committed once printed, or once --exec exits 0; a failing
// command stops the reader at that record (it is read again next time).
int consume_stream(const ConsumeOptions& o) {
  StreamConsumerOptions options{o.name, o.from.empty() ? "earliest" : o.from,
                                o.prefetch > 0 ? o.prefetch : 1000, o.socket};
  StreamConsumer consumer(o.stream, options);
  consumer.on_notice(
      [](std::uint32_t, std::uint64_t, const std::string& why) { report("consume", why); });
  std::uint64_t handled = 0;
  auto progress = count_progress(o);
  struct StdoutClosed {};
  try {
    consumer.run([&](const StreamEntry& e) {
      const Message& m = e.message;
      if (!o.exec.empty()) {
        const int status = run_command(o.exec, m.payload(),
                                       {{"MQKIT_ID", m.id().to_string()},
                                        {"MQKIT_TOPIC", m.topic()},
                                        {"MQKIT_KEY", m.envelope.key.value_or("")},
                                        {"MQKIT_PARTITION", std::to_string(e.partition)},
                                        {"MQKIT_OFFSET", std::to_string(e.offset)}});
        if (status != 0)
          throw Error(errc::bad_argument, "command exited with status " + std::to_string(status) +
                                              " at partition " + std::to_string(e.partition) +
                                              " offset " + std::to_string(e.offset) +
                                              "; not committed: reading again resumes there");
      } else {
        std::string line = o.json ? message_json(m) : escape_line(m.payload());
        if (o.json)
          line.insert(1, "\"partition\":" + std::to_string(e.partition) +
                             ",\"offset\":" + std::to_string(e.offset) +
                             ",\"time_ms\":" + std::to_string(e.time_ms) + ",");
        if (!write_line(line)) throw StdoutClosed{};  // this record is not committed
      }
      progress.advance();
      if (o.count > 0 && ++handled >= o.count) consumer.stop();
    });
  } catch (const StdoutClosed&) {
    // `consume | head -3`: a normal way to end.
  }
  return 0;
}

int run_consume(ConsumeOptions o) {
  stop_on_signals();
  apply_curve_client_flags(o.curve, o.socket.security);
  if (!o.stream.empty()) {
    if (!o.proxy.empty()) throw UsageError("give --stream EP or --proxy EP, not both");
    if (o.sub || o.bind || !o.topics.empty() || !o.group.empty())
      throw UsageError(
          "--stream reads a stream: --sub, --bind, --topic and --group do not apply "
          "(use --name to share partitions)");
    return consume_stream(o);
  }
  if (!o.name.empty()) throw UsageError("--name goes with --stream (for --proxy, use --group)");
  if (o.from.empty() == o.proxy.empty())
    throw UsageError(
        "give --from EP (work queue, or sub with --sub), --proxy EP --group NAME or "
        "--stream EP");
  if (!o.proxy.empty()) return consume_via_proxy(o);
  const Endpoint endpoint{o.from, o.bind ? Endpoint::Mode::bind : Endpoint::Mode::connect};
  std::uint64_t handled = 0;
  auto progress = count_progress(o);
  std::function<void()> stop;

  auto handle = [&](const Message& m) {
    if (!o.exec.empty()) {
      const int status = exec_for(o.exec, m);
      if (status != 0)
        report("consume", "command exited with status " + std::to_string(status) + " for message " +
                              m.id().to_string());
    } else if (!write_line(o.json ? message_json(m) : escape_line(m.payload()))) {
      stop();  // stdout is gone (`consume | head -3`): a normal way to end
      return;
    }
    progress.advance();
    if (o.count > 0 && ++handled >= o.count) stop();
  };
  auto on_drop = [](std::error_code, std::string_view detail) {
    report("consume", "dropped a message: " + std::string(detail));
  };

  if (o.sub) {
    Subscriber subscriber(endpoint, o.topics.empty() ? std::vector<std::string>{""} : o.topics,
                          o.socket);
    subscriber.on_drop(on_drop);
    stop = [&subscriber] { subscriber.stop(); };
    subscriber.run(handle);
  } else {
    Worker worker(endpoint, o.socket);
    worker.on_drop(on_drop);
    stop = [&worker] { worker.stop(); };
    worker.run(handle);
  }
  return 0;
}

}  // namespace

void setup_consume(CLI::App& app, Runner& runner) {
  auto* sub = app.add_subcommand(
      "consume", "Receive messages and print each payload on its own line, or run a command");
  auto o = std::make_shared<ConsumeOptions>();
  sub->add_option("--from", o->from,
                  "Endpoint to connect to, e.g. tcp://127.0.0.1:5558; with --stream: where to "
                  "start reading: earliest (default), latest, OFFSET, P:OFFSET, an RFC 3339 time "
                  "or a time ago (-10m)");
  sub->add_option("--stream", o->stream,
                  "Read a stream device (its --back endpoint), in order per partition");
  sub->add_option("--name", o->name,
                  "With --stream: a consumer name; its position is kept by the device and its "
                  "members share the partitions");
  sub->add_option("--proxy", o->proxy,
                  "Consume from a reliable proxy (its --back endpoint) as a worker of --group");
  sub->add_option("--group", o->group, "With --proxy: the consumer group to join");
  sub->add_option("--prefetch", o->prefetch,
                  "With --proxy: unacked messages held at once; with --stream: records "
                  "delivered and not yet committed (default 100; 1000 with --stream)")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--sub", o->sub, "Subscribe (SUB) instead of pulling from a work queue (PULL)");
  sub->add_flag("--bind", o->bind, "Bind --from instead of connecting (peer to peer, no device)");
  sub->add_option("--topic", o->topics,
                  "With --sub: receive topics that start with these bytes; with --proxy: the "
                  "group's filters (order.*, order.#); repeatable");
  sub->add_flag("--json", o->json,
                "Print one JSON object per message: id, topic, attempt, created_at, headers, "
                "key, payload (payload_base64 when not UTF-8)");
  sub->add_option("--exec", o->exec,
                  "Run CMD through /bin/sh -c once per message, payload on its stdin, "
                  "MQKIT_ID, MQKIT_TOPIC and MQKIT_ATTEMPT in its environment");
  sub->add_option("--count", o->count, "Exit after N messages")->check(CLI::PositiveNumber);
  add_socket_options(*sub, o->socket);
  add_curve_client_flags(*sub, o->curve);
  sub->footer(
      "Output: one payload per line, flushed after each message. Printable ASCII and valid "
      "UTF-8 are printed as they are; backslash, newline, CR and tab as \\\\ \\n \\r \\t; any "
      "other byte as \\xHH.\nRuns until --count messages, SIGINT or SIGTERM.");
  sub->callback([&runner, o] { runner = [o] { return run_consume(*o); }; });
}

}  // namespace mqkit::cli
