// The outbox on its own: order, held acks and when they leave, batches.
#include "master/outbox.h"

#include <gtest/gtest.h>

#include <chrono>

namespace taskq {
namespace {

using std::chrono::milliseconds;

constexpr uint32_t kWorker = 0, kOther = 2;
const TimePoint t0 = TimePoint() + std::chrono::hours(1);

// The ops of a batch, in order, as "peer:op".
std::vector<std::string> Ops(const std::vector<OutMsg>& batch) {
  std::vector<std::string> ops;
  for (const OutMsg& m : batch) {
    Result<Message> d = Decode(m.bytes);
    EXPECT_TRUE(d.ok()) << d.status().message();
    ops.push_back(m.routing_id + ":" + (d.ok() ? std::string(OpName(*d)) : "?"));
  }
  return ops;
}

std::vector<OutMsg> Take(Outbox& box) {
  std::vector<OutMsg> batch;
  box.TakeBatch(&batch);
  return batch;
}

TEST(Outbox, BatchesKeepTheOrderMessagesWereQueuedIn) {
  Outbox box;
  box.Push(kWorker, "w", Ping{});
  box.Push(OutMsg::kNoPeer, "stranger", ErrorMsg{1, kErrHelloRequired, "say hello"});
  box.Push(kOther, "o", AckOk{2, 1, 0});
  EXPECT_EQ(box.queued(), 3u);
  std::vector<OutMsg> batch = Take(box);
  EXPECT_EQ(Ops(batch), (std::vector<std::string>{"w:ping", "stranger:error", "o:ack_ok"}));
  EXPECT_EQ(batch[1].peer, OutMsg::kNoPeer);
  EXPECT_TRUE(box.empty()) << "a batch takes everything queued";
  box.Push(kWorker, "w", Ping{});
  box.TakeBatch(&batch);
  EXPECT_EQ(Ops(batch), (std::vector<std::string>{"w:ping"})) << "the batch is cleared first";
}

TEST(Outbox, AnItemsReplyKeepsWhatItHandedOut) {
  Outbox box;
  Delivery d;
  d.ids = {7, 8};
  d.leases = {{3, 1, false}, {4, 1, true}};
  Items reply;
  reply.rid = 5;
  reply.queue = "tasks";
  box.Push(kWorker, "w", reply, d);
  std::vector<OutMsg> batch = Take(box);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].delivery.ids, (std::vector<uint64_t>{7, 8}));
  EXPECT_EQ(batch[0].delivery.leases[1].lease, 4u);
  EXPECT_TRUE(batch[0].delivery.leases[1].outcome);
}

TEST(Outbox, HeldAcksWaitUntilTheyAreDue) {
  Outbox box;
  box.HoldAck(kWorker, "w", ResultOk{1, 1, 0}, t0 + milliseconds(50));
  box.HoldAck(kWorker, "w", ResultOk{2, 1, 0}, t0 + milliseconds(90));
  EXPECT_EQ(box.held(), 2u);
  EXPECT_EQ(box.NextAckDue(), t0 + milliseconds(50)) << "the first held ack sets when";
  box.ReleaseAcks(t0 + milliseconds(49), /*all=*/false);
  EXPECT_TRUE(box.empty()) << "not due, and nothing else goes to the peer";
  box.ReleaseAcks(t0 + milliseconds(50), /*all=*/false);
  EXPECT_EQ(Ops(Take(box)), (std::vector<std::string>{"w:result_ok", "w:result_ok"}));
  EXPECT_EQ(box.held(), 0u);
  EXPECT_EQ(box.NextAckDue(), TimePoint::max());
}

TEST(Outbox, HeldAcksRideWithTheNextMessageToTheirPeerOnly) {
  Outbox box;
  box.HoldAck(kWorker, "w", ResultOk{1, 1, 0}, t0 + milliseconds(50));
  box.HoldAck(kOther, "o", ResultOk{2, 1, 0}, t0 + milliseconds(50));
  box.Push(kWorker, "w", Items{});
  box.ReleaseAcks(t0, /*all=*/false);
  EXPECT_EQ(Ops(Take(box)), (std::vector<std::string>{"w:items", "w:result_ok"}))
      << "the other peer's ack still waits";
  EXPECT_EQ(box.held(), 1u);
  box.ReleaseAcks(t0, /*all=*/true);
  EXPECT_EQ(Ops(Take(box)), (std::vector<std::string>{"o:result_ok"}));
}

TEST(Outbox, AMessageWithNoPeerReleasesNoAcks) {
  Outbox box;
  box.HoldAck(kWorker, "w", ResultOk{1, 1, 0}, t0 + milliseconds(50));
  box.Push(OutMsg::kNoPeer, "w", ErrorMsg{0, kErrBadMessage, "garbage"});
  box.ReleaseAcks(t0, /*all=*/false);
  EXPECT_EQ(Ops(Take(box)), (std::vector<std::string>{"w:error"}));
  EXPECT_EQ(box.held(), 1u);
}

TEST(Outbox, APeerThatLeftLosesItsHeldAcksAndItsCellStartsClean) {
  Outbox box;
  box.HoldAck(kWorker, "w", ResultOk{1, 1, 0}, t0 + milliseconds(50));
  box.ForgetPeer(kWorker);
  box.ForgetPeer(kOther);  // held nothing: nothing happens
  EXPECT_EQ(box.held(), 0u);
  EXPECT_EQ(box.NextAckDue(), TimePoint::max());
  box.HoldAck(kWorker, "new", ResultOk{2, 1, 0}, t0 + milliseconds(80));
  EXPECT_EQ(box.NextAckDue(), t0 + milliseconds(80)) << "the new peer's acks are its own";
  box.ReleaseAcks(t0 + milliseconds(80), /*all=*/false);
  EXPECT_EQ(Ops(Take(box)), (std::vector<std::string>{"new:result_ok"}));
}

TEST(Outbox, ClearDropsQueuedMessagesAndHeldAcks) {
  Outbox box;
  box.Push(kWorker, "w", Ping{});
  box.HoldAck(kOther, "o", ResultOk{1, 1, 0}, t0);
  box.Clear();
  EXPECT_TRUE(box.empty());
  EXPECT_EQ(box.held(), 0u);
  box.ReleaseAcks(t0, /*all=*/true);
  EXPECT_TRUE(box.empty()) << "nothing comes back";
}

// The server loop counts the replies queued for its own job
// (ServerLoop::ReadRouter stops reading when one comes).
TEST(Outbox, CountsTheMessagesQueuedForTheNamedRoutingIdOnly) {
  Outbox box;
  box.Push(kWorker, "job", Ping{});
  EXPECT_EQ(box.counted(), 0u) << "nothing is counted before an id is named";
  box.CountFor("job");
  box.Push(kWorker, "job", Ping{});
  box.Push(kOther, "jo", Ping{});
  box.Push(kOther, "jobs", Ping{});
  box.HoldAck(kOther, "job", ResultOk{1, 1, 0}, t0);
  EXPECT_EQ(box.counted(), 1u);
  box.Push(kWorker, "job", AckOk{2, 1, 0});
  EXPECT_EQ(box.counted(), 2u);
  Take(box);
  EXPECT_EQ(box.counted(), 2u) << "a count, not what is queued";
}

}  // namespace
}  // namespace taskq
