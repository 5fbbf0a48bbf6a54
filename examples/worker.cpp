// The tutorial's task_worker.py, written against taskq's client API: take
// tasks, square them, report the results. Unlike the Python original, a task
// taken here is leased, not removed: if this program dies before Done, the
// master gives the task to another worker.
//
//   TASKQ_AUTHKEY=abc ./example_worker 127.0.0.1:5000
#include <cstdlib>
#include <iostream>

#include <taskq/client.h>

static taskq::ClientOptions WorkerOptions() {
  taskq::ClientOptions o;
  o.role = "worker";
  return o;
}

static const char* Key() {
  return std::getenv("TASKQ_AUTHKEY") ? std::getenv("TASKQ_AUTHKEY") : "";
}

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  const char* server = argc > 1 ? argv[1] : "127.0.0.1:5000";
  std::cout << "Connect to server " << server << "...\n";
  auto m = taskq::Client::Connect(server, Key(), WorkerOptions());
  if (!m.ok()) return std::cerr << m.status().message() << "\n", 1;
  taskq::Queue task = (*m)->GetQueue("tasks");

  for (;;) {
    taskq::Result<taskq::Item> t = task.Take(1s);
    if (!t.ok()) break;  // Empty: "task queue is empty."
    int64_t n = t->arg.AsInt().value_or(0);
    std::cout << "run task " << n << " * " << n << "...\n";
    taskq::Result<uint64_t> done = (*m)->Done(*t, taskq::Value::Int(n * n));
    if (!done.ok()) std::cerr << done.status().message() << "\n";
  }
  std::cout << "worker exit.\n";
}
