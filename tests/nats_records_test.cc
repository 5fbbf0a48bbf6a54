// The NATS store's names and payloads without a server: the subject token
// encoding E() (docs/STORE-NATS.md, "Streams and subjects") and the batch,
// chunk and counter payloads ("Payloads").
#include "master/nats_records.h"

#include <gtest/gtest.h>

#include "master/nats_subject.h"

namespace taskq {
namespace {

TEST(NatsSubjectTest, UsualNamesStayReadable) {
  EXPECT_EQ("tasks", EncodeToken("tasks"));
  EXPECT_EQ("job_2Eab12", EncodeToken("job.ab12"));
  EXPECT_EQ("my-queue_5F2", EncodeToken("my-queue_2"));
  EXPECT_EQ("a_20b_2A_3E", EncodeToken("a b*>"));
  EXPECT_EQ("_00_FF", EncodeToken(std::string("\0\xff", 2)));
  EXPECT_EQ("tq.task.job_2E7.render", TaskSubject("job.7", "render"));
  EXPECT_EQ("tq.task.job_2E7.>", TaskFilter("job.7"));
  EXPECT_EQ("tq.out.results.42", OutSubject("results", 42));
}

TEST(NatsSubjectTest, EveryByteRoundTrips) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  const std::string token = EncodeToken(all);
  for (const char c : token)
    EXPECT_TRUE(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << token;
  EXPECT_EQ(all, DecodeToken(token));
  EXPECT_EQ(3u * 255, EncodeToken(std::string(255, '.')).size()) << "the longest token";
}

TEST(NatsSubjectTest, DecodeRefusesWhatNoNameEncodesTo) {
  for (const char* bad : {"a.b", "a_2e", "a_4", "a_", "_41", "a*", "a b"})
    EXPECT_FALSE(DecodeToken(bad).has_value()) << bad;
}

TEST(NatsSubjectTest, LaneConsumerNamesAreUnambiguousAndShort) {
  EXPECT_EQ("q_-render", LaneConsumer("q", "render"));
  EXPECT_NE(LaneConsumer("a-b", "c"), LaneConsumer("a", "b-c"));
  const std::string long_name = LaneConsumer(std::string(255, '.'), "k");
  EXPECT_EQ(0u, long_name.rfind("h_-", 0)) << long_name;
  EXPECT_LE(long_name.size(), 200u);
  EXPECT_NE(long_name, LaneConsumer(std::string(255, '.'), "l"));
}

TEST(NatsSubjectTest, NamesHaveOneTo255Bytes) {
  EXPECT_TRUE(CheckName("a kind", "k").ok());
  EXPECT_TRUE(CheckName("a kind", std::string(255, 'k')).ok());
  EXPECT_EQ(Code::kInvalid, CheckName("a kind", "").code());
  EXPECT_EQ("a kind of 256 bytes: it must have 1 to 255",
            CheckName("a kind", std::string(256, 'k')).message());
}

TEST(NatsSubjectTest, TaskSubjectsParseBack) {
  const auto lane = ParseTaskSubject(TaskSubject("job.7", "a b"));
  ASSERT_TRUE(lane.has_value());
  EXPECT_EQ("job.7", lane->first);
  EXPECT_EQ("a b", lane->second);
  for (const char* bad : {"tq.out.q.1", "tq.task.q", "tq.task.q.a.b", "tq.task.q_2e.a"})
    EXPECT_FALSE(ParseTaskSubject(bad).has_value()) << bad;
  EXPECT_EQ("tq.out.job_2E7.>", OutFilter("job.7"));
  EXPECT_EQ("job_2E7", OutConsumer("job.7"));
  EXPECT_LE(OutConsumer(std::string(255, '.')).size(), 200u);
}

TEST(NatsRecordsTest, BatchRoundTrips) {
  TaskBatch batch;
  batch.first_id = 5 * kBatchTasks + 10;
  batch.items = {"\x91\x01", std::string("\0\xc1", 2), ""};
  TaskBatch back;
  ASSERT_TRUE(DecodeBatchPayload(EncodeBatchPayload(batch), &back).ok());
  EXPECT_EQ(batch.first_id, back.first_id);
  EXPECT_EQ(batch.items, back.items);
  EXPECT_EQ(5u, back.batch());
}

TEST(NatsRecordsTest, BatchLeavingItsBlockOrEmptyIsRefused) {
  TaskBatch batch;
  batch.first_id = kBatchTasks - 1;
  batch.items = {"a", "b"};  // ids 255 and 256: two blocks
  TaskBatch back;
  const Status s = DecodeBatchPayload(EncodeBatchPayload(batch), &back);
  EXPECT_EQ(Code::kProtocol, s.code());
  EXPECT_NE(std::string::npos, s.message().find("task batch")) << s.message();
  batch.items.clear();
  EXPECT_FALSE(DecodeBatchPayload(EncodeBatchPayload(batch), &back).ok());
  EXPECT_FALSE(DecodeBatchPayload("\x93\x02\x00\x90", &back).ok()) << "format 2";
  EXPECT_FALSE(DecodeBatchPayload(EncodeBatchPayload(batch) + "x", &back).ok());
}

TEST(NatsRecordsTest, ChunkRoundTrips) {
  OutcomeChunk chunk;
  chunk.batch = 7;
  chunk.SetDone(7 * kBatchTasks + 0);
  chunk.SetDone(7 * kBatchTasks + 65);
  chunk.SetDone(7 * kBatchTasks + 255);
  chunk.attempts = {1, 0, 3, 70000};
  chunk.outcomes = {{7 * kBatchTasks + 65, "ok"}, {7 * kBatchTasks + 255, std::string(1, '\0')}};
  OutcomeChunk back;
  ASSERT_TRUE(DecodeChunkPayload(EncodeChunkPayload(chunk), &back).ok());
  EXPECT_EQ(chunk.done, back.done);
  EXPECT_TRUE(back.IsDone(7 * kBatchTasks + 65));
  EXPECT_FALSE(back.IsDone(7 * kBatchTasks + 64));
  EXPECT_EQ(chunk.attempts, back.attempts);
  ASSERT_EQ(2u, back.outcomes.size());
  EXPECT_EQ(chunk.outcomes[1].id, back.outcomes[1].id);
  EXPECT_EQ(chunk.outcomes[1].bytes, back.outcomes[1].bytes);
}

TEST(NatsRecordsTest, ChunkWithAnOutcomeOfAnotherBatchIsRefused) {
  OutcomeChunk chunk;
  chunk.batch = 7;
  chunk.outcomes = {{8 * kBatchTasks, "ok"}};
  OutcomeChunk back;
  EXPECT_EQ(Code::kProtocol, DecodeChunkPayload(EncodeChunkPayload(chunk), &back).code());
}

TEST(NatsRecordsTest, CounterRoundTrips) {
  uint64_t next = 0;
  ASSERT_TRUE(DecodeCounterPayload(EncodeCounterPayload(uint64_t{1} << 40), &next).ok());
  EXPECT_EQ(uint64_t{1} << 40, next);
  EXPECT_FALSE(DecodeCounterPayload("", &next).ok());
}

}  // namespace
}  // namespace taskq
