// A minimal work queue: one producer, two workers on threads, each job done
// once. Run it: build/examples/mqkit_example_work_queue
#include <mqkit/mqkit.hpp>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

int main() {
  constexpr int kJobs = 10;
  // The producer binds; workers connect (without a streamer in between).
  mqkit::Producer producer(mqkit::bind("tcp://127.0.0.1:*"));
  const std::string endpoint = producer.last_endpoint();

  std::atomic<int> done{0};
  std::vector<std::thread> workers;
  for (int w = 1; w <= 2; ++w)
    workers.emplace_back([&, w] {
      mqkit::Worker worker(mqkit::connect(endpoint));
      while (done < kJobs)
        if (auto job = worker.receive(std::chrono::milliseconds(100))) {
          std::printf("worker %d: %.*s (%s)\n", w, int(job->payload().size()),
                      job->payload().data(), job->id().to_string().c_str());
          ++done;
        }
    });

  // PUSH round-robins over the workers connected at the time: give both a
  // moment to connect, or the first one may get every job (still once each).
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (int i = 1; i <= kJobs; ++i) (void)producer.send("jobs.resize", "image-" + std::to_string(i));
  for (auto& w : workers) w.join();
  return done == kJobs ? 0 : 1;
}
