// One master, many workers: W DEALER sockets in this process, each a worker
// of capacity 1 (a window of 2 tasks, as task_worker -j 1 asks), then T
// square tasks put; each simulated worker answers its tasks at once and asks
// again. Reports how evenly the master spread them. The key comes from
// TASKQ_AUTHKEY.
//
//   many_workers HOST:PORT W T
//
// Prints one JSON line: {"workers", "tasks", "mean", "min", "max",
// "max_over_mean", "seconds"}.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <zmq.hpp>

#include "client/client.h"
#include "client/endpoint.h"
#include "proto/keys.h"
#include "proto/limits.h"
#include "proto/message.h"
#include "proto/value.h"

namespace {

void Send(zmq::socket_t& s, const taskq::Message& m) {
  const std::string bytes = taskq::Encode(m);
  s.send(zmq::buffer(bytes), zmq::send_flags::none);
}

taskq::Get AskFor(uint64_t rid) {
  taskq::Get g;
  g.rid = rid;
  g.queue = "tasks";
  g.max = 2;
  g.timeout_ms = 60000;
  g.lease = true;
  g.kinds = {"square"};
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: many_workers HOST:PORT WORKERS TASKS\n");
    return 2;
  }
  const int w = std::atoi(argv[2]);
  const int t = std::atoi(argv[3]);
  rlimit nofile;
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;  // a socket is a few descriptors
  setrlimit(RLIMIT_NOFILE, &nofile);
  const char* key = std::getenv("TASKQ_AUTHKEY");
  auto keys = taskq::DeriveKeys(key ? key : "");
  auto addr = taskq::ParseServerAddress(argv[1], 5000);
  if (!keys.ok() || !addr.ok()) {
    std::fprintf(stderr, "many_workers: bad key or address\n");
    return 2;
  }

  zmq::context_t ctx(1);
  ctx.set(zmq::ctxopt::max_sockets, w + 64);
  std::vector<zmq::socket_t> socks;
  for (int i = 0; i < w; ++i) {
    socks.emplace_back(ctx, zmq::socket_type::dealer);
    zmq::socket_t& s = socks.back();
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::curve_serverkey, keys->master.public_z85);
    s.set(zmq::sockopt::curve_publickey, keys->client.public_z85);
    s.set(zmq::sockopt::curve_secretkey, keys->client.secret_z85);
    s.connect(addr->TcpEndpoint());
    taskq::Hello h;
    h.role = "worker";
    const std::string name = "sim-" + std::to_string(i);
    h.name = name;
    h.capacity = 1;
    h.kinds = {"square"};
    Send(s, h);
    Send(s, AskFor(1));
  }
  std::vector<zmq::pollitem_t> items(w);
  for (int i = 0; i < w; ++i) items[i] = {socks[i].handle(), 0, ZMQ_POLLIN, 0};
  // Every worker's get is parked once stats show them all.
  auto client = taskq::Client::Connect(argv[1], key ? key : "");
  if (!client.ok()) {
    std::fprintf(stderr, "many_workers: %s\n", client.status().message().c_str());
    return 1;
  }
  for (;;) {
    auto st = (*client)->Stats();
    if (st.ok() && static_cast<int>(st->workers.size()) >= w) break;
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(50));
    for (int i = 0; i < w; ++i) {  // welcomes
      zmq::message_t m;
      while (socks[i].recv(m, zmq::recv_flags::dontwait)) {
      }
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (int left = t; left > 0;) {
    const int n = std::min<int>(left, taskq::kMaxBatch);
    std::vector<taskq::TaskSpec> tasks(n, taskq::TaskSpec{"square", taskq::Value::Int(7), {}});
    if (auto r = (*client)->Put("tasks", tasks); !r.ok()) {
      std::fprintf(stderr, "many_workers: %s\n", r.status().message().c_str());
      return 1;
    }
    left -= n;
  }
  std::vector<int> got(w, 0);
  int total = 0;
  const std::string v = taskq::Value::Int(49).packed();
  while (total < t) {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(1000));
    for (int i = 0; i < w; ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      zmq::message_t m;
      while (socks[i].recv(m, zmq::recv_flags::dontwait)) {
        auto msg = taskq::Decode(std::string_view(m.data<char>(), m.size()));
        if (!msg.ok() || !std::holds_alternative<taskq::Items>(*msg)) continue;
        const auto& entries = std::get<taskq::Items>(*msg).items;
        if (entries.empty()) {
          Send(socks[i], AskFor(1));
          continue;
        }
        taskq::ResultMsg r;
        for (const auto& e : entries) r.results.push_back(taskq::TaskResult{e.id, true, v, {}, 1, true});
        got[i] += static_cast<int>(entries.size());
        total += static_cast<int>(entries.size());
        Send(socks[i], r);
        Send(socks[i], AskFor(1));
      }
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double mean = static_cast<double>(t) / w;
  const int mx = *std::max_element(got.begin(), got.end()), mn = *std::min_element(got.begin(), got.end());
  std::printf("{\"workers\": %d, \"tasks\": %d, \"mean\": %.1f, \"min\": %d, \"max\": %d, \"max_over_mean\": %.2f, "
              "\"seconds\": %.3f}\n",
              w, t, mean, mn, mx, mx / mean, secs);
  for (auto& s : socks) Send(s, taskq::Goodbye{});
  return 0;
}
