// Puts N square tasks into a queue nobody takes from, so the master's memory
// per queued task can be read; the key comes from TASKQ_AUTHKEY.
//
//   put_many HOST:PORT N [QUEUE]
//
// Prints one JSON line: {"put": N, "seconds": S}.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "client/client.h"
#include "proto/limits.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: put_many HOST:PORT N [QUEUE]\n");
    return 2;
  }
  const long long n = std::atoll(argv[2]);
  const std::string queue = argc > 3 ? argv[3] : "held";
  const char* key = std::getenv("TASKQ_AUTHKEY");
  auto client = taskq::Client::Connect(argv[1], key ? key : "");
  if (!client.ok()) {
    std::fprintf(stderr, "put_many: %s\n", client.status().message().c_str());
    return 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<taskq::TaskSpec> batch;
  for (long long i = 0; i < n; ++i) {
    batch.push_back(taskq::TaskSpec{"square", taskq::Value::Int(i % 10001), {}});
    if (batch.size() == taskq::kMaxBatch || i + 1 == n) {
      if (auto r = (*client)->Put(queue, batch); !r.ok()) {
        std::fprintf(stderr, "put_many: %s\n", r.status().message().c_str());
        return 1;
      }
      batch.clear();
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("{\"put\": %lld, \"seconds\": %.3f}\n", n, secs);
  return 0;
}
