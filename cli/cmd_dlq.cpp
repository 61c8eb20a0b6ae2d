// `mqkit dlq ls|show|replay|purge DIR`: fixing failures from a dead-letter
// spool. `ls` and `show` read the files (also while a proxy owns them).
// `replay` and `purge` change the DLQ through the proxy that holds its lock
// (its admin endpoint is in DIR/LOCK), or directly when no process does: one
// writer at a time.
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>

#include "commands.hpp"
#include "curve_flags.hpp"
#include "mqkit/devices/stats.hpp"
#include "mqkit/duration.hpp"
#include "mqkit/envelope.hpp"
#include "mqkit/error.hpp"
#include "mqkit/reliable_producer.hpp"
#include "mqkit/spool.hpp"
#include "mqkit/stop.hpp"
#include "progress.hpp"
#include "table.hpp"
#include "text_output.hpp"

namespace mqkit::cli {
namespace {

constexpr const char* kReplayHeader = "mqkit-replay-of";

struct DlqOptions {
  CurveFlags curve;
  std::string dir;
  std::string id;                // show
  std::vector<std::string> ids;  // replay, purge
  std::string group, topic;
  std::string proxy;
  double rate = 0;
  bool dry_run = false;
  bool json = false;
  bool all = false;
  std::string older_than;
  std::string timeout = "60s";
  std::string delay;  // replay: scheduled this much later instead of at once
};

std::string utc(std::uint64_t ms) {
  if (ms == 0) return "-";
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char date[32], millis[8];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(millis, sizeof millis, ".%03uZ", static_cast<unsigned>(ms % 1000));
  return std::string(date) + millis;
}

struct DeadLetter {
  StoredMessage stored;
  Message message;
  const DeadLetterInfo& info() const { return *stored.dead_letter; }
};

std::vector<DeadLetter> read_dead_letters(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw Error(errc::bad_argument, dir +
                                        " is not a directory (give the proxy's --dlq, by default "
                                        "SPOOL.dlq)");
  std::vector<DeadLetter> out;
  for (auto& stored : read_spool(dir).dead_letters) {
    DeadLetter d{std::move(stored), {}};
    if (const auto r = decode(d.stored.frame, d.message); r) continue;  // unreadable: skip
    out.push_back(std::move(d));
  }
  return out;
}

// The dead letters `o` selects: by id, group, topic, age; all when none given.
std::vector<DeadLetter> select(const DlqOptions& o) {
  std::set<std::string> ids(o.ids.begin(), o.ids.end());
  for (const auto& id : ids)
    if (!MessageId::parse(id)) throw UsageError("'" + id + "' is not a message id");
  const std::uint64_t now =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  const std::uint64_t older_than =
      o.older_than.empty() ? 0 : static_cast<std::uint64_t>(parse_duration(o.older_than).count());
  std::vector<DeadLetter> out;
  for (auto& d : read_dead_letters(o.dir)) {
    if (!ids.empty() && !ids.contains(d.stored.id.to_string())) continue;
    if (!o.group.empty() && d.info().group != o.group) continue;
    if (!o.topic.empty() && d.message.topic() != o.topic) continue;
    if (older_than > 0 && now - d.info().last_failure_ms < older_than) continue;
    out.push_back(std::move(d));
  }
  return out;
}

int run_ls(const DlqOptions& o) {
  std::vector<TableRow> rows;
  for (const auto& d : read_dead_letters(o.dir))
    rows.push_back({{"id", d.stored.id.to_string()},
                    {"topic", d.message.topic()},
                    {"group", d.info().group},
                    {"attempts", std::to_string(d.info().attempts)},
                    {"reason", d.info().reason},
                    {"last_error", d.info().last_error},
                    {"first_failure", utc(d.info().first_failure_ms)},
                    {"last_failure", utc(d.info().last_failure_ms)}});
  std::string out =
      o.json ? format_json_rows(rows)
             : (rows.empty() ? "no dead letters in " + o.dir + "\n" : format_table(rows));
  std::fputs(out.c_str(), stdout);
  return 0;
}

int run_show(const DlqOptions& o) {
  const auto id = MessageId::parse(o.id);
  if (!id) throw UsageError("'" + o.id + "' is not a message id");
  // One per group that dead-lettered the message (--group: only that one's).
  std::size_t shown = 0;
  for (const auto& d : read_dead_letters(o.dir)) {
    if (d.stored.id != *id || (!o.group.empty() && d.info().group != o.group)) continue;
    if (shown++ > 0 && !o.json) std::fputs("\n", stdout);
    if (o.json) {
      std::string out = message_json(d.message);
      out.pop_back();  // the closing brace: add the dead letter's history
      for (const auto& [k, v] :
           std::vector<std::pair<std::string, std::string>>{{"group", d.info().group},
                                                            {"reason", d.info().reason},
                                                            {"last_error", d.info().last_error}}) {
        out += ",";
        append_json_string(out, k);
        out += ":";
        append_json_string(out, escape_line(v));
      }
      out += ",\"attempts\":" + std::to_string(d.info().attempts) +
             ",\"first_failure_ms\":" + std::to_string(d.info().first_failure_ms) +
             ",\"last_failure_ms\":" + std::to_string(d.info().last_failure_ms) + "}\n";
      std::fputs(out.c_str(), stdout);
      continue;
    }
    const Envelope& e = d.message.envelope;
    std::string out = "id:            " + e.id.to_string() +
                      "\ntopic:         " + escape_line(e.topic) +
                      "\ncreated at:    " + utc(e.created_at) + "\n";
    if (e.key) out += "key:           " + escape_line(*e.key) + "\n";
    for (const auto& [k, v] : e.headers)
      out += "header:        " + escape_line(k) + "=" + escape_line(v) + "\n";
    out += "group:         " + d.info().group + "\nreason:        " + escape_line(d.info().reason) +
           "\nattempts:      " + std::to_string(d.info().attempts) +
           "\nlast error:    " + escape_line(d.info().last_error) +
           "\nfirst failure: " + utc(d.info().first_failure_ms) +
           "\nlast failure:  " + utc(d.info().last_failure_ms) + "\npayload (" +
           std::to_string(d.message.payload().size()) + " bytes):\n" +
           escape_line(d.message.payload()) + "\n";
    std::fputs(out.c_str(), stdout);
  }
  if (shown > 0) return 0;
  throw Error(errc::bad_argument, "no dead letter " + o.id + " in " + o.dir);
}

// A dead letter is one message in one group (two groups may dead-letter
// the same message).
using DeadLetterKey = std::pair<MessageId, std::string>;

// Where dead letters are removed: through the proxy that owns the DLQ (its
// admin endpoint), or directly in the files, locked for as long as this
// lives. Made before anything is published, so that whatever cannot remove
// refuses first.
class DeadLetterRemover {
 public:
  DeadLetterRemover(const std::string& dir, const Security& security) : security_(security) {
    if (auto owner = spool_owner(dir)) {
      if (owner->admin_endpoint.empty())
        throw Error(errc::in_use, dir + " is owned by pid " + std::to_string(owner->pid) +
                                      ", which has no admin endpoint: start the proxy with "
                                      "--stats (a topology proxy with stats:), or stop it");
      endpoint_ = owner->admin_endpoint;
      (void)devices::query_stats(endpoint_, std::chrono::seconds(10), security_);  // answers?
      return;
    }
    SpoolOptions options;
    options.dead_letters = true;
    spool_.emplace(dir, options);  // locks it: no proxy can start on it meanwhile
  }

  std::size_t remove(const std::vector<DeadLetterKey>& letters) {
    if (letters.empty()) return 0;
    std::size_t removed = 0;
    if (!spool_) {
      for (std::size_t at = 0; at < letters.size(); at += 1000) {  // bounded requests
        std::vector<std::string> command{"dlq", "rm"};
        for (std::size_t i = at; i < std::min(letters.size(), at + 1000); ++i)
          command.push_back(letters[i].first.to_string() + ":" + letters[i].second);
        const auto rows =
            devices::admin_request(endpoint_, command, std::chrono::seconds(10), security_);
        if (!rows.empty() && !rows.front().empty())
          removed += std::stoull(rows.front().front().second);
      }
      return removed;
    }
    // A tombstone that could not be written is no removal (flush() waits
    // for the completions, which run on the spool's writer thread).
    std::atomic<int> failed_error{0};
    for (const auto& [id, group] : letters) {
      if (!spool_->read_dead_letter(id, group)) continue;
      spool_->remove_dead_letter(id, group, [&failed_error](AppendResult r) {
        if (!r) failed_error = r.error != 0 ? r.error : EIO;
      });
      ++removed;
    }
    spool_->flush();
    if (const int err = failed_error; err != 0)
      throw std::runtime_error(
          "cannot remove dead letters: the dead-letter spool could not write a tombstone (" +
          std::string(std::strerror(err)) + "); try again");
    return removed;
  }

 private:
  Security security_;
  std::string endpoint_;
  std::optional<Spool> spool_;
};

// The id of a dead letter's replayed copy: derived from the dead letter (its
// id, group and last failure time), so that a second replay of the same dead
// letter (its removal failed, or the tool or the proxy crashed in between)
// is answered `duplicate` by the proxy instead of being stored again. The
// time tells dead letters of one message and group apart: one that died
// again (redelivered after a crash, say) gets a copy of its own, neither
// swallowed as a duplicate of the first copy nor stored under its id again. The timestamp
// stays; the random half is a hash of the whole id, the group and a tag, not
// the id's own bits mixed with a mask: XOR would make the copy of a copy
// (one that died again) the original again, which the proxy may still
// remember and answer `duplicate` for.
MessageId replay_id(const MessageId& original, const std::string& group,
                    std::uint64_t last_failure_ms) {
  const auto& bytes_in = original.bytes();
  // FNV-1a over the id, "replay:GROUP" and the last failure time.
  std::uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](unsigned char c) { h = (h ^ c) * 0x100000001b3ull; };
  for (const auto b : bytes_in) mix(b);
  for (const char c : "replay:" + group) mix(static_cast<unsigned char>(c));
  for (int i = 0; i < 8; ++i) mix(static_cast<unsigned char>(last_failure_ms >> (8 * i)));
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;  // splitmix64's finaliser
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
  h ^= h >> 31;
  auto bytes = original.bytes();
  for (int i = 0; i < 8; ++i) bytes[8 + i] = static_cast<std::uint8_t>(h >> (8 * i));
  bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3f) | 0x80);  // the UUID variant
  return MessageId(bytes);
}

int run_replay(const DlqOptions& o) {
  stop_on_signals();
  Security security;
  apply_curve_client_flags(o.curve, security);
  auto chosen = select(o);
  if (chosen.empty()) {
    report("dlq replay", "nothing to replay in " + o.dir);
    return 0;
  }
  if (o.dry_run) {
    for (const auto& d : chosen)
      std::printf("would replay %s (topic %s) to group %s\n", d.stored.id.to_string().c_str(),
                  escape_line(d.message.topic()).c_str(), d.info().group.c_str());
    std::printf("%zu dead letters would be replayed through %s\n", chosen.size(), o.proxy.c_str());
    return 0;
  }
  // Whatever would refuse the removal refuses before anything is published.
  DeadLetterRemover remover(o.dir, security);
  // One producer per group: a replayed copy goes only to the group it died in.
  std::map<std::string, std::unique_ptr<ReliableProducer>> producers;
  std::vector<DeadLetterKey> confirmed;
  std::size_t refused = 0;
  std::string last_problem;
  const auto start = std::chrono::steady_clock::now();
  const auto delay = o.delay.empty() ? std::chrono::milliseconds(0) : parse_duration(o.delay);
  Progress progress("dlq replay", "replayed", chosen.size(), true);
  for (std::size_t i = 0; i < chosen.size() && !stop_requested(); ++i) {
    if (o.rate > 0)
      std::this_thread::sleep_until(start + std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                std::chrono::duration<double>(double(i) / o.rate)));
    const auto& d = chosen[i];
    auto& producer = producers[d.info().group];
    if (!producer) {
      ReliableProducerOptions options;
      options.socket.security = security;
      options.target_group = d.info().group;
      options.timeout = parse_duration(o.timeout);
      producer = std::make_unique<ReliableProducer>(o.proxy, options);
    }
    // A copy with an id of its own, derived from the dead letter (the dedup
    // window must not swallow it, and must swallow a second replay of it),
    // attempt 1, and a header naming the message it replaces.
    Envelope copy = d.message.envelope;
    copy.id = replay_id(d.stored.id, d.info().group, d.info().last_failure_ms);
    copy.attempt = 1;
    copy.headers[kReplayHeader] = d.stored.id.to_string();
    if (delay.count() > 0)  // re-scheduled: the proxy holds it until then
      copy.not_before = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(
              (std::chrono::system_clock::now() + delay).time_since_epoch())
              .count());
    producer->send_async(
        copy, d.message.payload(),
        [&, key = DeadLetterKey{d.stored.id, d.info().group}](const PublishResult& r) {
          // A duplicate: this copy was stored by an earlier replay.
          if (r.status == PublishStatus::stored || r.status == PublishStatus::duplicate) {
            confirmed.push_back(key);
            progress.confirm();
          } else {
            ++refused;
            last_problem = std::string(to_string(r.status)) + ": " + r.reason;
          }
        });
    progress.advance();
  }
  std::size_t unconfirmed = 0;
  for (auto& [group, producer] : producers)
    unconfirmed += producer->flush(parse_duration(o.timeout));
  progress.finish();
  const std::size_t removed = remover.remove(confirmed);
  std::string summary = std::to_string(confirmed.size()) + " of " + std::to_string(chosen.size()) +
                        " dead letters replayed through " + o.proxy + " and removed (" +
                        std::to_string(removed) + ")";
  if (refused + unconfirmed > 0)
    summary += "; " + std::to_string(refused) + " refused" +
               (last_problem.empty() ? "" : " (last: " + last_problem + ")") + ", " +
               std::to_string(unconfirmed) + " unconfirmed: they stay in the DLQ";
  report("dlq replay", summary);
  return confirmed.size() == chosen.size() ? 0 : 1;
}

int run_purge(const DlqOptions& o) {
  if (o.ids.empty() && o.older_than.empty() && o.group.empty() && o.topic.empty() && !o.all)
    throw UsageError(
        "say which dead letters to purge: --id, --older-than, --group, --topic, "
        "or --all");
  std::vector<DeadLetterKey> letters;
  for (const auto& d : select(o)) letters.emplace_back(d.stored.id, d.info().group);
  Security security;
  apply_curve_client_flags(o.curve, security);
  const std::size_t removed = DeadLetterRemover(o.dir, security).remove(letters);
  report("dlq purge", "purged " + std::to_string(removed) + " dead letters from " + o.dir);
  return 0;
}

void add_selection(CLI::App& sub, DlqOptions& o) {
  add_curve_client_flags(sub, o.curve);
  sub.add_option("--id", o.ids, "Only this dead letter (repeatable)");
  sub.add_option("--group", o.group, "Only those that died in this group");
  sub.add_option("--topic", o.topic, "Only those with this topic");
}

}  // namespace

void setup_dlq(CLI::App& app, Runner& runner) {
  auto* dlq = app.add_subcommand("dlq", "List, show, replay and purge dead letters");
  dlq->require_subcommand(1);
  auto o = std::make_shared<DlqOptions>();

  auto* ls = dlq->add_subcommand(
      "ls", "One row per dead letter: id, topic, group, attempts, reason, last error, times");
  ls->add_option("dir", o->dir, "The dead-letter spool (the proxy's --dlq)")->required();
  ls->add_flag("--json", o->json, "Print a JSON array of objects");
  ls->callback([&runner, o] { runner = [o] { return run_ls(*o); }; });

  auto* show = dlq->add_subcommand("show", "One dead letter: envelope, headers, history, payload");
  show->add_option("dir", o->dir, "The dead-letter spool")->required();
  show->add_option("id", o->id, "Its message id")->required();
  show->add_flag("--json", o->json,
                 "Print one JSON object (a line per group that dead-lettered it)");
  show->add_option("--group", o->group, "Only the one that died in this group");
  show->callback([&runner, o] { runner = [o] { return run_show(*o); }; });

  auto* replay = dlq->add_subcommand(
      "replay",
      "Publish copies (an id derived from the dead letter, so a second replay is a duplicate; "
      "attempt 1; header mqkit-replay-of) to the group each died in; "
      "remove each once the proxy confirmed its copy");
  replay->add_option("dir", o->dir, "The dead-letter spool")->required();
  replay->add_option("--proxy", o->proxy, "The proxy's --front endpoint")->required();
  add_selection(*replay, *o);
  replay->add_option("--rate", o->rate, "At most this many messages per second")
      ->check(CLI::PositiveNumber);
  replay->add_flag("--dry-run", o->dry_run, "Only list what would be replayed");
  replay
      ->add_option("--delay", o->delay,
                   "Re-schedule instead of replaying at once: each copy is delivered no "
                   "earlier than DUR from now (the dead letter is removed once the copy is "
                   "stored)")
      ->check(duration_validator());
  replay->add_option("--timeout", o->timeout, "How long to wait for confirms (default 60s)")
      ->check(duration_validator());
  replay->callback([&runner, o] { runner = [o] { return run_replay(*o); }; });

  auto* purge = dlq->add_subcommand("purge", "Delete dead letters for good");
  purge->add_option("dir", o->dir, "The dead-letter spool")->required();
  add_selection(*purge, *o);
  purge
      ->add_option("--older-than", o->older_than,
                   "Only those whose last failure is older than DUR (e.g. 7d, 12h)")
      ->check(duration_validator());
  purge->add_flag("--all", o->all, "Every dead letter");
  purge->callback([&runner, o] { runner = [o] { return run_purge(*o); }; });
}

}  // namespace mqkit::cli
