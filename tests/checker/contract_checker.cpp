// mqkit_contract_checker: drives the proxy, the stream device and a bridge
// from a proxy group into a stream (each a child process, killed and
// restarted, with I/O faults) from seeds and checks what the clients saw
// against docs/contract.md. Every third seed runs the devices with
// --fsync interval=50ms, the others with always. A failing seed
// prints itself, the rule it broke and the part of the history that shows
// it; run it again with --seed to replay the same schedule (the thread
// timing differs from run to run; the seed fixes the choices).
//
//   mqkit_contract_checker --device proxy --seed 7 --seconds 8
//   mqkit_contract_checker --device all --seeds 1-20          (CI)
//   mqkit_contract_checker --device all --until-kills 100     (soak)
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "child_process.hpp"
#include "run.hpp"

namespace {

using namespace mqkit::checker;
namespace fs = std::filesystem;

struct Totals {
  int seeds = 0, kills = 0, failed = 0;
  std::map<std::string, std::uint64_t> figures, faults;
};

// Every third seed runs under interval, where a power loss may take the last
// confirms (docs/contract.md, rule 1).
std::string fsync_of(std::uint32_t seed) {
  return seed % 3 == 0 ? "interval=50ms" : "always";
}

void print_report(const std::string& device, std::uint32_t seed, const Report& r,
                  const History& history) {
  std::printf("seed %u %s (fsync %s): %d kills, faults", seed, device.c_str(),
              fsync_of(seed).c_str(), r.kills);
  for (const auto& [kind, n] : r.faults)
    std::printf(" %s=%llu", kind.c_str(), (unsigned long long)n);
  std::printf("\n  ");
  for (const auto& [what, n] : r.figures)
    std::printf("%s %llu, ", what.c_str(), (unsigned long long)n);
  std::printf("violations %zu\n", r.violations.size());
  for (std::size_t i = 0; i < r.violations.size() && i < 5; ++i) {
    const auto& v = r.violations[i];
    std::printf("  VIOLATION (%s): %s %s\n", v.rule.c_str(), v.id.c_str(), v.detail.c_str());
    if (!v.id.empty()) history.print_for(v.id, stdout);
  }
  if (!r.violations.empty())
    std::printf("  replay: mqkit_contract_checker --device %s --seed %u\n", device.c_str(), seed);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Checks the proxy and the stream device against docs/contract.md, from seeds"};
  std::string device = "all", seeds_text, faults = "power", device_binary, dir_parent;
  std::uint32_t seed = 0;
  double seconds = 8;
  int until_kills = 0;
  std::string mqkit_binary = mqkit::test::mqkit_binary();
  app.add_option("--device", device, "proxy, stream, bridge, or all of them")
      ->check(CLI::IsMember({"proxy", "stream", "bridge", "all"}));
  app.add_option("--seed", seed, "one seed");
  app.add_option("--seeds", seeds_text, "a range of seeds, FIRST-LAST");
  app.add_option("--seconds", seconds, "per seed: how long to produce, kill and inject");
  app.add_option("--faults", faults, "none, io, or power (io and power losses)")
      ->check(CLI::IsMember({"none", "io", "power"}));
  app.add_option("--until-kills", until_kills,
                 "soak: run seeds one after another until each device was killed this often");
  app.add_option("--device-binary", device_binary, "checker_device")->required();
  app.add_option("--mqkit-binary", mqkit_binary, "the mqkit CLI (for dlq replay)")
      ->capture_default_str();
  app.add_option("--dir", dir_parent, "where runs keep their files (default: the temp dir)");
  CLI11_PARSE(app, argc, argv);

  std::uint32_t first = seed == 0 ? 1 : seed, last = first;
  if (!seeds_text.empty()) {
    const auto dash = seeds_text.find('-');
    first = static_cast<std::uint32_t>(std::stoul(seeds_text.substr(0, dash)));
    last = dash == std::string::npos
               ? first
               : static_cast<std::uint32_t>(std::stoul(seeds_text.substr(dash + 1)));
  }
  if (until_kills > 0) last = UINT32_MAX;
  const fs::path parent = dir_parent.empty() ? fs::temp_directory_path() : fs::path(dir_parent);

  std::map<std::string, Totals> totals;
  std::vector<std::string> devices =
      device == "all" ? std::vector<std::string>{"proxy", "stream", "bridge"} : std::vector{device};
  for (std::uint32_t s = first; s <= last; ++s) {
    bool any = false;
    for (const auto& d : devices) {
      Totals& t = totals[d];
      if (until_kills > 0 && t.kills >= until_kills) continue;
      any = true;
      RunConfig config;
      config.device_binary = device_binary;
      config.seed = s;
      config.duration = std::chrono::milliseconds(static_cast<long>(seconds * 1000));
      config.faults = faults;
      config.fsync = fsync_of(s);
      config.mqkit_binary = mqkit_binary;
      config.dir = (parent / ("mqkit-checker-" + std::to_string(::getpid()) + "-" + d + "-" +
                              std::to_string(s)))
                       .string();
      fs::remove_all(config.dir);
      History history;
      Report report;
      try {
        report = d == "proxy"    ? run_proxy(config, history)
                 : d == "stream" ? run_stream(config, history)
                                 : run_bridge(config, history);
      } catch (const std::exception& e) {
        report.violations.push_back({"the checker runs to its end", "", e.what()});
      }
      print_report(d, s, report, history);
      ++t.seeds;
      t.kills += report.kills;
      if (!report.violations.empty()) ++t.failed;
      for (const auto& [k, n] : report.figures) t.figures[k] += n;
      for (const auto& [k, n] : report.faults) t.faults[k] += n;
      if (report.violations.empty())
        fs::remove_all(config.dir);
      else
        std::printf("  its files are kept in %s\n", config.dir.c_str());
    }
    if (!any) break;
  }
  int failed = 0;
  for (const auto& [d, t] : totals) {
    std::printf("total %s: %d seeds, %d failed, %d kills, faults", d.c_str(), t.seeds, t.failed,
                t.kills);
    for (const auto& [kind, n] : t.faults)
      std::printf(" %s=%llu", kind.c_str(), (unsigned long long)n);
    std::printf("\n  ");
    for (const auto& [what, n] : t.figures)
      std::printf("%s %llu, ", what.c_str(), (unsigned long long)n);
    std::printf("\n");
    failed += t.failed;
  }
  return failed == 0 ? 0 : 1;
}
