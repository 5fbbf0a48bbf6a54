// Writes the seed corpus for the fuzzers: one file per message of every
// kind (decode_fuzzer), and a few conversations (broker_fuzzer).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "proto/message.h"
#include "proto/value.h"

using namespace taskq;

namespace {

void Write(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
}

std::string Record(char peer, uint8_t flags, const std::string& msg) {
  std::string r;
  r.push_back(peer);
  r.push_back(static_cast<char>(flags));
  const uint16_t len = static_cast<uint16_t>(msg.size());
  r.append(reinterpret_cast<const char*>(&len), 2);
  return r + msg;
}

Hello WorkerHello(uint64_t session) {
  Hello h;
  h.role = "worker";
  h.name = "w";
  h.capacity = 2;
  h.session = session;
  h.heartbeat_ms = 50;
  h.kinds = {"square", "sleep"};
  h.holding = {1};
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_corpus DECODE_DIR BROKER_DIR\n");
    return 2;
  }
  const std::string seven = Value::Int(7).packed(), text = Value::Str("abc").packed();
  Put put;
  put.rid = 1;
  put.queue = "tasks";
  put.items = {NewTask{"square", seven, 0}, NewTask{"sleep", seven, 50}};
  Get get;
  get.rid = 2;
  get.queue = "tasks";
  get.max = 2;
  get.timeout_ms = 30;
  get.lease = true;
  get.kinds = {"square"};
  Items items;
  items.rid = 2;
  items.queue = "results";
  items.items = {Entry{1, "square", seven, 1, true, Outcome{true, seven, {}, "w", 3}}};
  ResultMsg result;
  result.rid = 3;
  result.results = {TaskResult{1, true, seven, {}, 1, true},
                    TaskResult{2, false, {}, "no", 1, false}};
  ResultMsg fault;
  fault.rid = 4;
  fault.results = {TaskResult{1, false, {}, "cannot write out/", 1, true}};
  fault.results[0].worker_fault = true;
  Get results = get;
  results.queue = "results";
  results.lease = false;
  Get leased_results = results;
  leased_results.lease = true;
  const std::vector<std::pair<std::string, Message>> all = {
      {"hello", WorkerHello(9)},
      {"welcome", Welcome{1, "m", 1, 1, 1000, 65536}},
      {"put", put},
      {"put_ok", PutOk{1, 1, 2}},
      {"get", get},
      {"items", items},
      {"result", result},
      {"result_ok", ResultOk{3, 1, 1}},
      {"stats", Stats{4}},
      {"ping", Ping{}},
      {"error", ErrorMsg{5, "full", "why"}},
      {"shutdown", Shutdown{"bye"}},
      {"goodbye", Goodbye{{1, 2}}},
      {"release", Release{{1}}},
      {"cancel", Cancel{2}},
      {"ack", Ack{6, {1, 2}}},
      {"ack_ok", AckOk{6, 1, 1}}};
  for (const auto& [name, m] : all) Write(argv[1], name, Encode(m));

  std::string talk = Record('A', 0, Encode(Hello())) + Record('B', 0, Encode(WorkerHello(7))) +
                     Record('B', 0, Encode(get)) + Record('A', 2, Encode(put)) +
                     Record('B', 20, Encode(result)) + Record('A', 0, Encode(results)) +
                     Record('B', 1, Encode(get)) + Record('A', 120, Encode(put)) +
                     Record('B', 0, Encode(Goodbye{{2}}));
  Write(argv[2], "conversation", talk);
  // A job that collects outcomes leased and acks them; a worker that blames itself.
  std::string collect = Record('A', 0, Encode(Hello())) + Record('B', 0, Encode(WorkerHello(7))) +
                        Record('A', 0, Encode(put)) + Record('B', 0, Encode(get)) +
                        Record('B', 0, Encode(fault)) + Record('B', 0, Encode(get)) +
                        Record('B', 2, Encode(result)) + Record('A', 0, Encode(leased_results)) +
                        Record('A', 1, Encode(leased_results)) +
                        Record('A', 0, Encode(Ack{5, {1}})) + Record('A', 0, Encode(Release{{2}})) +
                        Record('A', 0, Encode(Goodbye{}));
  Write(argv[2], "collect", collect);
  return 0;
}
