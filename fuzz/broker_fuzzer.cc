// libFuzzer target: the master's state machine fed a stream of messages from
// a few peers, with sends that sometimes fail and a clock that moves. After
// every step the queues' counts must match what the table holds.
//
// Input: records of [peer: 1 byte][flags: 1 byte][length: 2 bytes LE][bytes].
// flags bit 0: the transport refuses sends in this step; bits 1-7: ms to
// advance the clock.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "master/broker.h"

namespace {

class FlakyTransport : public taskq::Transport {
 public:
  bool refuse = false;
  taskq::SendResult Send(std::string_view, std::string_view) override {
    return refuse ? taskq::SendResult::kFull : taskq::SendResult::kSent;
  }
};

void CheckCounts(taskq::Broker& b) {
  taskq::QueueSet& qs = b.queues();
  std::vector<uint64_t> ready(qs.queue_count()), leased(qs.queue_count()), owed(qs.queue_count());
  const int64_t failed = qs.FindQueue("failed");
  qs.ForEachEntry(0, qs.next_id(), SIZE_MAX, [&](uint64_t, const taskq::Slot& s) {
    // A task not done yet owes its reply queue an outcome (records do not).
    if ((s.state == taskq::SlotState::kReady || s.state == taskq::SlotState::kLeased) &&
        static_cast<int64_t>(s.reply_to) != failed)
      ++owed[s.reply_to];
    if (s.state == taskq::SlotState::kReady || s.state == taskq::SlotState::kDone) ++ready[s.queue];
    if (s.state == taskq::SlotState::kLeased || s.state == taskq::SlotState::kHeld)
      ++leased[s.queue];
    if (s.state == taskq::SlotState::kTaken) std::abort();  // only within a Flush
  });
  for (uint32_t q = 0; q < qs.queue_count(); ++q) {
    if (qs.CountsOf(q).owed != owed[q]) {
      std::fprintf(stderr, "queue %u: owed %llu, table %llu\n", q,
                   (unsigned long long)qs.CountsOf(q).owed, (unsigned long long)owed[q]);
      std::abort();
    }
    if (qs.CountsOf(q).ready != ready[q] || qs.CountsOf(q).leased != leased[q]) {
      std::fprintf(stderr, "queue %u: counts %llu/%llu, table %llu/%llu\n", q,
                   (unsigned long long)qs.CountsOf(q).ready,
                   (unsigned long long)qs.CountsOf(q).leased, (unsigned long long)ready[q],
                   (unsigned long long)leased[q]);
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  taskq::BrokerOptions o;
  o.heartbeat = std::chrono::milliseconds(50);
  o.max_attempts = 2;
  o.task_timeout = std::chrono::milliseconds(100);
  o.max_queue = 50;
  taskq::Broker broker(o, nullptr);
  FlakyTransport transport;
  taskq::TimePoint now = taskq::TimePoint() + std::chrono::hours(1);
  std::size_t off = 0;
  while (off + 4 <= size) {
    const std::string peer(1, static_cast<char>('A' + data[off] % 4));
    const uint8_t flags = data[off + 1];
    uint16_t len;
    std::memcpy(&len, data + off + 2, 2);
    off += 4;
    len = static_cast<uint16_t>(std::min<std::size_t>(len, size - off));
    broker.Handle(peer, std::string_view(reinterpret_cast<const char*>(data + off), len), now);
    off += len;
    now += std::chrono::milliseconds(flags >> 1);
    broker.Tick(now);
    transport.refuse = flags & 1;
    broker.Flush(transport, now);
    CheckCounts(broker);
  }
  return 0;
}
