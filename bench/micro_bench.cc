// Micro-benchmarks (Google Benchmark) of the master's hot path pieces: the
// codec and the queue operations, per task.
#include <benchmark/benchmark.h>

#include "master/broker.h"
#include "master/crc32c.h"
#include "master/queue_set.h"
#include "proto/message.h"
#include "proto/value.h"

namespace taskq {
namespace {

const std::string kArg = Value::Int(9541).packed();

Put MakePut(int n) {
  Put p;
  p.queue = "tasks";
  p.items.assign(n, NewTask{"square", kArg, 0});
  return p;
}

void BM_EncodePut(benchmark::State& state) {
  const Put p = MakePut(static_cast<int>(state.range(0)));
  std::string out;
  for (auto _ : state) {
    out.clear();
    EncodeTo(p, &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_EncodePut)->Arg(1)->Arg(1000);

void BM_DecodePut(benchmark::State& state) {
  const std::string bytes = Encode(MakePut(static_cast<int>(state.range(0))));
  for (auto _ : state) benchmark::DoNotOptimize(Decode(bytes));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_DecodePut)->Arg(1)->Arg(1000);

void BM_DecodeResults(benchmark::State& state) {
  ResultMsg r;
  const std::string v = Value::Int(91030681).packed();
  for (int i = 0; i < state.range(0); ++i) r.results.push_back(TaskResult{uint64_t(i) + 1000000, true, v, {}, 3, true});
  const std::string bytes = Encode(r);
  for (auto _ : state) benchmark::DoNotOptimize(Decode(bytes));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_DecodeResults)->Arg(1000);

// What a master's job reads: outcomes from the results queue.
void BM_DecodeItemsWithOutcomes(benchmark::State& state) {
  Items items;
  items.rid = 7;
  items.queue = "results";
  const std::string v = Value::Int(91030681).packed();
  for (int i = 0; i < state.range(0); ++i)
    items.items.push_back(
        Entry{uint64_t(i) + 1000000, "square", kArg, 1, true, Outcome{true, v, {}, "vm-1234", 3}});
  const std::string bytes = Encode(items);
  for (auto _ : state) benchmark::DoNotOptimize(Decode(bytes));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_DecodeItemsWithOutcomes)->Arg(1000);

// One task's whole life in the queues: added, leased, done, collected.
void BM_QueueSetLifeOfATask(benchmark::State& state) {
  QueueSet qs;
  const uint32_t tasks = *qs.QueueId("tasks"), results = *qs.QueueId("results");
  const uint16_t kind = *qs.KindId("square");
  for (auto _ : state) {
    const uint64_t id = qs.Add(tasks, results, kind, kArg);
    qs.Pop(tasks, {});
    qs.MarkLeased(id, 0);
    qs.MarkDone(id, StoredOutcome{true, "\xce\x05\x6c\xfd\x99", "w", 1});
    qs.Pop(results, {});
    qs.MarkTaken(id);
    qs.Free(id);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_QueueSetLifeOfATask);

class NullTransport : public Transport {
 public:
  SendResult Send(std::string_view, std::string_view) override { return SendResult::kSent; }
};

// The master's work for a batch of tasks, through its real message
// handlers: put, get (lease), result, get (results).
// range(1) = 1: the outcomes are collected leased and then acked, as
// task_master's own job does.
void BM_BrokerBatch(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const bool leased = state.range(1) != 0;
  Broker b(BrokerOptions(), nullptr);
  NullTransport t;
  const TimePoint now = Clock::now();
  Hello hw;
  hw.role = "worker";
  b.Handle("W", Encode(hw), now);
  b.Handle("C", Encode(Hello()), now);
  const std::string put = Encode(MakePut(n));
  Get take;
  take.queue = "tasks";
  take.max = n;
  take.lease = true;
  const std::string take_bytes = Encode(take);
  Get collect;
  collect.queue = "results";
  collect.max = n;
  collect.lease = leased;
  const std::string collect_bytes = Encode(collect);
  Ack ack;
  ack.rid = 1;
  const std::string v = Value::Int(91030681).packed();
  uint64_t first = 1;
  for (auto _ : state) {
    b.Handle("C", put, now);
    b.Handle("W", take_bytes, now);
    ResultMsg r;
    for (int i = 0; i < n; ++i) r.results.push_back(TaskResult{first + i, true, v, {}, 1, true});
    first += n;
    b.Handle("W", Encode(r), now);
    b.Handle("C", collect_bytes, now);
    if (leased) {
      ack.ids.clear();
      for (int i = 0; i < n; ++i) ack.ids.push_back(first - n + i);
      b.Handle("C", Encode(ack), now);
    }
    b.Flush(t, now);
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_BrokerBatch)->Args({1, 0})->Args({1000, 0})->Args({1000, 1});

void BM_Crc32c(benchmark::State& state) {
  const std::string data(1 << 20, 'x');
  for (auto _ : state) benchmark::DoNotOptimize(Crc32c(data.data(), data.size()));
  state.SetBytesProcessed(state.iterations() * data.size());
}
BENCHMARK(BM_Crc32c);

}  // namespace
}  // namespace taskq

BENCHMARK_MAIN();
