// CURVE as users run it: keygen, a proxy with an allow-list, clients with
// the right key, a wrong key and none; the admin surface; and the bytes on
// the wire, captured by a relay between client and proxy.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <mutex>
#include <thread>

#include "child_process.hpp"
#include "cli_support.hpp"
#include "helpers.hpp"
#include "mqkit/devices/stats.hpp"
#include "mqkit/security.hpp"

using namespace std::chrono_literals;
using mqkit::test::ChildProcess;
using mqkit::test::kAnyPort;
using mqkit::test::run_mqkit;
using mqkit::test::start_proxy;
using mqkit::test::TempDir;

namespace {

// A TCP relay on a free loopback port that forwards to `port` and keeps a
// copy of every byte, for looking at what crosses the wire.
class Relay {
 public:
  explicit Relay(int target_port) : target_(target_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listener_, 4) == 0);
    socklen_t len = sizeof a;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~Relay() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }
  std::string endpoint() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  std::string captured() {
    std::lock_guard lock(mutex_);
    return bytes_;
  }

 private:
  void run() {
    pollfd accept_fd{listener_, POLLIN, 0};
    int client = -1, server = -1;
    for (int turn = 0; !stop_ && turn < 3000; ++turn) {  // 30 s at most
      if (client < 0) {
        if (::poll(&accept_fd, 1, 10) <= 0) continue;
        client = ::accept(listener_, nullptr, nullptr);
        server = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(static_cast<std::uint16_t>(target_));
        if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) break;
        continue;
      }
      pollfd fds[] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (::poll(fds, 2, 10) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
        char buffer[65536];
        const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
        if (n <= 0) {
          stop_ = true;
          break;
        }
        {
          std::lock_guard lock(mutex_);
          bytes_.append(buffer, static_cast<std::size_t>(n));
        }
        (void)::write(fds[1 - i].fd, buffer, static_cast<std::size_t>(n));
      }
    }
    if (client >= 0) ::close(client);
    if (server >= 0) ::close(server);
  }

  int target_, listener_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::string bytes_;
};

int port_of(const std::string& endpoint) {
  return std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
}

}  // namespace

TEST_CASE("keygen writes a CURVE pair that others cannot read, and a readable secret is refused",
          "[integration][security]") {
  TempDir dir;
  auto [code, err] = run_mqkit({"keygen", "--out", dir.file("proxy")});
  REQUIRE(code == 0);
  struct stat st {};
  REQUIRE(::stat(dir.file("proxy.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const auto pair = mqkit::load_key_pair(dir.file("proxy.key"));
  CHECK(pair.public_key.size() == 40);
  CHECK(mqkit::load_public_key(dir.file("proxy.pub")) == pair.public_key);
  CHECK(mqkit::test::read_lines(dir.file("proxy.pub"))[3].find("secret") == std::string::npos);

  ::chmod(dir.file("proxy.key").c_str(), 0644);
  std::tie(code, err) =
      run_mqkit({"proxy", "--front", kAnyPort, "--back", kAnyPort, "--spool", dir.file("spool"),
                 "--curve-key", dir.file("proxy.key"), "--allow", dir.file("proxy.pub")});
  CHECK(code == 2);
  CHECK_THAT(err, Catch::Contains("others can read it (mode 0644): run chmod 600"));
  std::tie(code, err) = run_mqkit({"proxy", "--front", kAnyPort, "--back", kAnyPort, "--spool",
                                   dir.file("spool"), "--curve-key", dir.file("proxy.key")});
  CHECK(code == 2);
  CHECK_THAT(err, Catch::Contains("--curve-key and --allow go together"));
}

TEST_CASE("a CURVE proxy serves listed keys only, guards its admin endpoint and hides payloads",
          "[integration][security]") {
  TempDir dir;
  for (const char* name : {"proxy", "client", "intruder"})
    REQUIRE(run_mqkit({"keygen", "--out", dir.file(name)}).first == 0);
  std::filesystem::create_directory(dir.file("allowed"));
  std::filesystem::copy_file(dir.file("client.pub"), dir.file("allowed/client.pub"));
  auto proxy = start_proxy(dir, {"--group", "g=#", "--curve-key", dir.file("proxy.key"), "--allow",
                                 dir.file("allowed")});
  const auto& ep = proxy.endpoints;
  const std::vector<std::string> as_client{"--curve-key", dir.file("client.key"), "--server-key",
                                           dir.file("proxy.pub")};
  mqkit::Security admin;
  admin.client = mqkit::load_key_pair(dir.file("client.key"));
  admin.server_public_key = mqkit::load_public_key(dir.file("proxy.pub"));
  auto stored = [&] { return mqkit::devices::query_stats(ep.stats, 5s, admin).get("stored"); };

  // The right keys: through a relay that keeps the bytes.
  Relay relay(port_of(ep.in));
  mqkit::test::write_file(dir.file("secret"), "SECRET-PAYLOAD-4711\n");
  std::vector<std::string> send{"send", "--proxy", relay.endpoint(),  "--topic",
                                "t",    "--file",  dir.file("secret")};
  send.insert(send.end(), as_client.begin(), as_client.end());
  auto [code, err] = run_mqkit(send);
  INFO(err);
  CHECK(code == 0);
  CHECK(stored() == 1);
  CHECK(relay.captured().size() > 100);  // the relay saw the handshake and the message
  CHECK(relay.captured().find("SECRET-PAYLOAD") == std::string::npos);

  // A key that is not on the list, and no CURVE at all: nothing gets in.
  std::tie(code, err) = run_mqkit(
      {"send", "--proxy", ep.in, "--topic", "t", "--file", dir.file("secret"), "--timeout", "2s",
       "--curve-key", dir.file("intruder.key"), "--server-key", dir.file("proxy.pub")});
  CHECK(code == 1);
  CHECK_THAT(err, Catch::Contains("0 of 1 messages confirmed"));
  std::tie(code, err) = run_mqkit(
      {"send", "--proxy", ep.in, "--topic", "t", "--file", dir.file("secret"), "--timeout", "2s"});
  CHECK(code == 1);
  CHECK(stored() == 1);
  CHECK(mqkit::devices::query_stats(ep.stats, 5s, admin).get("curve_refused") >= 1);
  CHECK(mqkit::devices::query_stats(ep.stats, 5s, admin).get("refused_connections") >= 1);
  // Nothing they sent is in the spool: one PUBLISH record, the listed client's.
  ChildProcess dump({mqkit::test::mqkit_binary(), "spool", "dump", dir.file("spool")});
  std::size_t publishes = 0;
  while (auto line = dump.read_line(5s)) publishes += line->starts_with("PUBLISH ");
  CHECK(dump.wait(5s) == 0);
  CHECK(publishes == 1);

  // The admin endpoint is guarded the same way.
  std::tie(code, err) = run_mqkit({"stat", ep.stats, "--timeout", "1s"});
  CHECK(code == 1);
  CHECK_THAT(err, Catch::Contains("no stats reply"));

  // A listed worker gets the message.
  std::vector<std::string> consume{
      mqkit::test::mqkit_binary(), "consume", "--proxy", ep.out, "--group", "g", "--count", "1"};
  consume.insert(consume.end(), as_client.begin(), as_client.end());
  ChildProcess worker(consume);
  const auto got = worker.read_line(10s);
  REQUIRE(got);
  CHECK(*got == "SECRET-PAYLOAD-4711");
  CHECK(worker.wait(10s) == 0);
}

TEST_CASE("without CURVE the same relay sees the payload (the capture works)",
          "[integration][security]") {
  TempDir dir;
  auto proxy = start_proxy(dir, {"--group", "g=#"});
  Relay relay(port_of(proxy.endpoints.in));
  mqkit::test::write_file(dir.file("plain"), "PLAIN-PAYLOAD-4711\n");
  const auto [code, err] =
      run_mqkit({"send", "--proxy", relay.endpoint(), "--topic", "t", "--file", dir.file("plain")});
  CHECK(code == 0);
  CHECK(relay.captured().find("PLAIN-PAYLOAD-4711") != std::string::npos);
}

TEST_CASE("a proxy takes the .pub file keygen wrote as its allow-list", "[integration][security]") {
  TempDir dir;
  for (const char* name : {"proxy", "client"})
    REQUIRE(run_mqkit({"keygen", "--out", dir.file(name)}).first == 0);
  auto proxy = start_proxy(dir, {"--group", "g=#", "--curve-key", dir.file("proxy.key"), "--allow",
                                 dir.file("client.pub")});
  mqkit::test::write_file(dir.file("message"), "hello\n");
  const auto [code, err] =
      run_mqkit({"send", "--proxy", proxy.endpoints.in, "--file", dir.file("message"),
                 "--curve-key", dir.file("client.key"), "--server-key", dir.file("proxy.pub")});
  INFO(err);
  CHECK(code == 0);
  CHECK_THAT(err, Catch::Contains("1 of 1 messages confirmed"));
}

TEST_CASE("send says which CURVE key to check when the handshake fails",
          "[integration][security]") {
  TempDir dir;
  for (const char* name : {"proxy", "client", "other"})
    REQUIRE(run_mqkit({"keygen", "--out", dir.file(name)}).first == 0);
  mqkit::test::write_file(dir.file("allowed"),
                          mqkit::load_public_key(dir.file("client.pub")) + "\n");
  auto proxy = start_proxy(dir, {"--group", "g=#", "--curve-key", dir.file("proxy.key"), "--allow",
                                 dir.file("allowed")});
  mqkit::test::write_file(dir.file("message"), "hello\n");
  auto send = [&](const std::string& key, const std::string& server_key) {
    return run_mqkit({"send", "--proxy", proxy.endpoints.in, "--file", dir.file("message"),
                      "--timeout", "2s", "--curve-key", dir.file(key), "--server-key",
                      dir.file(server_key)});
  };
  // An allowed client key, but the server key of another pair.
  auto [code, err] = send("client.key", "other.pub");
  CHECK(code == 1);
  CHECK_THAT(err, Catch::Contains("0 of 1 messages confirmed"));
  CHECK_THAT(err, Catch::Contains("CURVE handshake"));
  CHECK_THAT(err, Catch::Contains("--server-key"));
  // The right server key, but a client key that is not on the list.
  std::tie(code, err) = send("other.key", "proxy.pub");
  CHECK(code == 1);
  CHECK_THAT(err, Catch::Contains("--allow"));
}

TEST_CASE("consume --proxy says which CURVE key to check when the handshake fails",
          "[integration][security]") {
  // Regression (issue 14.15): a worker with an allowed key but the wrong
  // --server-key was told, after its attach timed out, "(is a proxy's --back
  // there?)".
  TempDir dir;
  for (const char* name : {"proxy", "client", "other"})
    REQUIRE(run_mqkit({"keygen", "--out", dir.file(name)}).first == 0);
  mqkit::test::write_file(dir.file("allowed"),
                          mqkit::load_public_key(dir.file("client.pub")) + "\n");
  auto proxy = start_proxy(dir, {"--group", "g=#", "--curve-key", dir.file("proxy.key"), "--allow",
                                 dir.file("allowed")});
  auto consume = [&](const std::string& key, const std::string& server_key) {
    return run_mqkit({"consume", "--proxy", proxy.endpoints.out, "--group", "g", "--count", "1",
                      "--curve-key", dir.file(key), "--server-key", dir.file(server_key)});
  };
  // An allowed client key, but the server key of another pair.
  auto [code, err] = consume("client.key", "other.pub");
  CHECK(code != 0);
  CHECK_THAT(err, Catch::Contains("CURVE handshake"));
  CHECK_THAT(err, Catch::Contains("--server-key"));
  CHECK_THAT(err, !Catch::Contains("is a proxy's --back there"));
  // The right server key, but a client key that is not on the list.
  std::tie(code, err) = consume("other.key", "proxy.pub");
  CHECK(code != 0);
  CHECK_THAT(err, Catch::Contains("--allow"));
  CHECK_THAT(err, !Catch::Contains("is a proxy's --back there"));
}

TEST_CASE("a bridge with its own key pair bridges a CURVE proxy into a stream under mqkit run",
          "[integration][security]") {
  TempDir dir;
  for (const char* name : {"proxy", "client", "bridge"})
    REQUIRE(run_mqkit({"keygen", "--out", dir.file(name)}).first == 0);
  std::filesystem::create_directory(dir.file("allowed"));
  for (const char* name : {"client", "bridge"})
    std::filesystem::copy_file(dir.file(std::string(name) + ".pub"),
                               dir.file(std::string("allowed/") + name + ".pub"));
  const auto ports = mqkit::test::free_endpoints(4);
  auto bind = [](const std::string& ep) { return "tcp://*:" + std::to_string(port_of(ep)); };
  const std::string topology =
      "devices:\n"
      "  orders:\n    kind: proxy\n    front: " +
      bind(ports[0]) + "\n    back: " + bind(ports[1]) + "\n    spool: " + dir.file("spool") +
      "\n    curve_key: " + dir.file("proxy.key") + "\n    allow: " + dir.file("allowed") +
      "\n    groups:\n      audit: '#'\n"
      "  log:\n    kind: stream\n    front: " +
      bind(ports[2]) + "\n    back: tcp://*:" + std::to_string(port_of(ports[3])) +
      "\n    dir: " + dir.file("log") +
      "\n"
      "  feed:\n    kind: bridge\n    source: proxy\n    name: audit\n"
      "    from: orders.back\n    to: log.front\n";
  mqkit::test::write_file(dir.file("plain.yaml"), topology);
  // Without a key of its own the bridge could never get in: the file says so.
  auto [code, err] = run_mqkit({"run", "--check", dir.file("plain.yaml")});
  CHECK(code == 2);
  CHECK_THAT(err, Catch::Contains("the bridge needs curve_key"));

  // A key pair of its own that the proxy does not list: the check says so too.
  REQUIRE(run_mqkit({"keygen", "--out", dir.file("stranger")}).first == 0);
  mqkit::test::write_file(dir.file("stranger.yaml"),
                          topology + "    curve_key: " + dir.file("stranger.key") + "\n");
  std::tie(code, err) = run_mqkit({"run", "--check", dir.file("stranger.yaml")});
  CHECK(code == 2);
  CHECK_THAT(err, Catch::Contains("bridge 'feed' cannot get into 'orders'"));
  CHECK_THAT(err, Catch::Contains("is not on orders's allow list"));

  mqkit::test::write_file(dir.file("topo.yaml"),
                          topology + "    curve_key: " + dir.file("bridge.key") + "\n");
  ChildProcess run({mqkit::test::mqkit_binary(), "run", dir.file("topo.yaml"), "--quiet"});
  for (int i = 0; i < 3; ++i) {
    const auto up = run.read_line(15s);
    INFO(run.stderr_text());
    REQUIRE(up);
  }
  mqkit::test::write_file(dir.file("orders"), "one\ntwo\nthree\n");
  std::tie(code, err) =
      run_mqkit({"send", "--proxy", ports[0], "--file", dir.file("orders"), "--curve-key",
                 dir.file("client.key"), "--server-key", dir.file("proxy.pub")});
  INFO(err);
  REQUIRE(code == 0);
  const std::string out = dir.file("read.txt");
  std::tie(code, err) =
      run_mqkit({"consume", "--stream", ports[3], "--from", "earliest", "--count", "3"},
                mqkit::test::Stdio{.stdout_file = out}, 30s);
  CHECK(code == 0);
  CHECK(mqkit::test::read_lines(out) == std::vector<std::string>{"one", "two", "three"});
  run.signal(SIGTERM);
  CHECK(run.wait(20s) == 0);
}
