// Where a run's time went, without perf: per thread of this process, the CPU
// it used and the time it waited, runnable, for a core (the run-queue wait in
// /proc/self/task/TID/schedstat); and how busy the whole machine was
// (/proc/stat), other processes and the hypervisor's steal included. A
// latency tail with long run-queue waits on a saturated machine is the
// scheduler's, not the code path's.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mqkit::bench {

struct ThreadTimes {
  double cpu = 0;   // on a core
  double wait = 0;  // runnable, waiting for a core
};

// Seconds so far, per thread name (threads of one name summed) and machine-wide.
struct ProfileSnapshot {
  std::chrono::steady_clock::time_point at;
  std::map<std::string, ThreadTimes> threads;
  double machine_busy = 0;  // all cores: user, nice, system, irq, softirq
  double machine_steal = 0;
  long cores = 1;

  static ProfileSnapshot take() {
    ProfileSnapshot s;
    s.at = std::chrono::steady_clock::now();
    s.cores = std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(task.path() / "comm"), stat(task.path() / "schedstat");
      std::string name;
      double run_ns = -1, wait_ns = -1;
      std::getline(comm, name);
      stat >> run_ns >> wait_ns;
      if (name.empty() || run_ns < 0 || wait_ns < 0) continue;  // it just exited
      s.threads[name].cpu += run_ns / 1e9;
      s.threads[name].wait += wait_ns / 1e9;
    }
    std::ifstream proc_stat("/proc/stat");
    std::string cpu;
    double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    proc_stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
    const double tick = double(::sysconf(_SC_CLK_TCK));
    s.machine_busy = (user + nice + system + irq + softirq) / tick;
    s.machine_steal = steal / tick;
    return s;
  }
};

// Percent of one core over the time since `before`.
struct RunProfile {
  std::map<std::string, ThreadTimes> threads;  // live threads only
  double machine_busy = 0;
  double machine_steal = 0;
  long cores = 1;

  static RunProfile since(const ProfileSnapshot& before) {
    const auto now = ProfileSnapshot::take();
    const double elapsed = std::chrono::duration<double>(now.at - before.at).count();
    RunProfile p;
    if (elapsed <= 0) return p;
    for (const auto& [name, t] : now.threads) {
      const auto old = before.threads.contains(name) ? before.threads.at(name) : ThreadTimes{};
      p.threads[name] = {100.0 * (t.cpu - old.cpu) / elapsed,
                         100.0 * (t.wait - old.wait) / elapsed};
    }
    p.machine_busy = 100.0 * (now.machine_busy - before.machine_busy) / elapsed;
    p.machine_steal = 100.0 * (now.machine_steal - before.machine_steal) / elapsed;
    p.cores = now.cores;
    return p;
  }

  // Two lines: the machine, then the threads above 1 % of a core by CPU.
  void print(const char* indent = "      ") const {
    std::printf("%smachine busy %.0f%% of %ld00%%, steal %.0f%%\n", indent, machine_busy, cores,
                machine_steal);
    std::vector<std::pair<double, std::string>> busy;
    for (const auto& [name, t] : threads)
      if (t.cpu >= 1 || t.wait >= 1) busy.emplace_back(t.cpu, name);
    std::sort(busy.rbegin(), busy.rend());
    std::printf("%sthreads, %% cpu / %% waiting for a core:", indent);
    for (const auto& [cpu, name] : busy)
      std::printf(" %s %.0f/%.0f", name.c_str(), cpu, threads.at(name).wait);
    std::printf("\n");
  }
};

}  // namespace mqkit::bench
