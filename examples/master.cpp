// The tutorial's task_master.py, written against taskq's client API: put ten
// random numbers, then collect their squares. Start a master to hold the
// queues (task_master --serve) and any number of workers first:
//
//   TASKQ_AUTHKEY=abc task_master --serve &
//   TASKQ_AUTHKEY=abc task_worker &
//   TASKQ_AUTHKEY=abc ./example_master 127.0.0.1:5000
#include <cstdlib>
#include <iostream>
#include <random>

#include <taskq/client.h>

static const char* Key() {
  return std::getenv("TASKQ_AUTHKEY") ? std::getenv("TASKQ_AUTHKEY") : "";
}

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  auto m = taskq::Client::Connect(argc > 1 ? argv[1] : "127.0.0.1:5000", Key());
  if (!m.ok()) return std::cerr << m.status().message() << "\n", 1;
  taskq::Queue task = (*m)->GetQueue("tasks"), result = (*m)->GetQueue("results");

  std::mt19937 rng(std::random_device{}());
  for (int i = 0; i < 10; ++i) {
    int n = rng() % 10000;
    std::cout << "Put task " << n << "...\n";
    taskq::Result<uint64_t> id = task.Put("square", taskq::Value::Int(n));
    if (!id.ok()) return std::cerr << id.status().message() << "\n", 1;
  }
  std::cout << "Try get results...\n";
  for (int i = 0; i < 10; ++i) {
    taskq::Result<taskq::Item> r = result.Get(10s);
    if (!r.ok()) return std::cerr << r.status().message() << "\n", 1;  // Empty after 10 s
    std::cout << "Result: " << r->arg.ToText() << " * " << r->arg.ToText() << " = "
              << r->outcome->value.ToText() << "\n";
  }
  std::cout << "master exit.\n";
}
