// A lone task's round trip through taskq: put one square task and wait for
// its outcome, again and again (one task in flight). The put and the get for
// the outcome go out back to back (pipelined, as any client may send
// requests), so the time measured is the task's own path: client -> master
// -> worker -> master -> client. Needs a master with a worker connected; the
// key comes from TASKQ_AUTHKEY.
//
//   taskq_latency HOST:PORT [ROUND_TRIPS]
//
// Prints one JSON line: {"system": "taskq", "round_trips", "p50_us", "p99_us"}.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "client/connection.h"
#include "client/endpoint.h"
#include "proto/keys.h"
#include "proto/value.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: taskq_latency HOST:PORT [ROUND_TRIPS]\n");
    return 2;
  }
  const int n = argc > 2 ? std::atoi(argv[2]) : 2000;
  const char* key = std::getenv("TASKQ_AUTHKEY");
  auto keys = taskq::DeriveKeys(key ? key : "");
  auto addr = taskq::ParseServerAddress(argv[1], taskq::kDefaultPort);
  if (!keys.ok() || !addr.ok()) return 2;
  zmq::context_t ctx(1);
  taskq::ConnectOptions co;
  co.endpoint = addr->TcpEndpoint();
  co.display = addr->Display();
  co.keys = &*keys;
  co.connect_timeout = std::chrono::seconds(10);
  auto conn = taskq::Connection::Open(ctx, co);
  if (!conn.ok()) {
    std::fprintf(stderr, "taskq_latency: %s\n", conn.status().message().c_str());
    return 1;
  }
  std::vector<double> us;
  uint64_t rid = 1;
  for (int i = -200; i < n; ++i) {  // the first 200: warm-up
    const std::string arg = taskq::Value::Int(i & 1023).packed();
    taskq::Put put;
    put.rid = rid++;
    put.queue = "tasks";
    put.items = {taskq::NewTask{"square", arg, 0}};
    taskq::Get get;
    get.rid = rid++;
    get.queue = "results";
    get.timeout_ms = 10000;
    const auto t0 = std::chrono::steady_clock::now();
    if (!(*conn)->Send(put).ok() || !(*conn)->Send(get).ok()) return 1;
    for (;;) {
      zmq::message_t frame;
      auto m = (*conn)->Receive(&frame, taskq::Clock::now() + std::chrono::seconds(15));
      if (!m.ok()) {
        std::fprintf(stderr, "taskq_latency: %s\n", m.status().message().c_str());
        return 1;
      }
      const auto* items = std::get_if<taskq::Items>(&*m);
      if (items && items->rid == get.rid) {
        if (items->items.size() != 1) return 1;
        break;
      }
    }
    if (i >= 0) us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  (void)(*conn)->Send(taskq::Goodbye{});
  std::sort(us.begin(), us.end());
  std::printf("{\"system\": \"taskq\", \"round_trips\": %d, \"p50_us\": %.1f, \"p99_us\": %.1f}\n", n,
              us[us.size() / 2], us[static_cast<std::size_t>(us.size() * 0.99)]);
  return 0;
}
