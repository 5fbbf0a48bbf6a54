#include "proto/message.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "proto/limits.h"
#include "proto/msgpack_writer.h"
#include "proto/value.h"

namespace taskq {
namespace {

const std::string kSeven = Value::Int(7).packed();
const std::string kText = Value::Str("abc").packed();
const std::string kFortyNine = Value::Int(49).packed();

std::vector<Message> OneOfEach() {
  Put put;
  put.rid = 3;
  put.queue = "tasks";
  put.reply_to = "mine";
  put.timeout_ms = 250;
  put.items = {NewTask{"square", kSeven, 0}, NewTask{"download", kText, 5000}};
  Get get;
  get.rid = 4;
  get.queue = "tasks";
  get.max = 64;
  get.timeout_ms = 30000;
  get.lease = true;
  get.kinds = {"square", "sleep"};
  Items items;
  items.rid = 4;
  items.queue = "results";
  items.items = {Entry{9, "square", kSeven, 1, false, {}},
                 Entry{10, "square", kText, 3, true, Outcome{false, {}, "bad input", "w1", 12}},
                 Entry{11, "square", kSeven, 1, true, Outcome{true, kFortyNine, {}, "w2", 3}}};
  ResultMsg result;
  result.rid = 5;
  result.results = {TaskResult{9, true, kFortyNine, {}, 17, true},
                    TaskResult{10, false, {}, "no", 5, false}};
  StatsOk stats;
  stats.rid = 6;
  stats.queues = {QueueStats{"results", 1, 0, 0}, QueueStats{"tasks", 5, 2, 1}};
  stats.workers = {WorkerStats{"w1", 2, 4, 100, 30, 15000}};
  stats.counters = {{"put", 10}, {"duplicates", 1}};
  Hello hello;
  hello.role = "worker";
  hello.name = "w1";
  hello.capacity = 4;
  hello.session = 99;
  hello.heartbeat_ms = 1000;
  hello.kinds = {"square", "exec"};
  hello.holding = {7, 8};
  return {hello,
          Welcome{1, "taskq-master", 1234, 5678, 1000, kMaxBatch},
          put,
          PutOk{3, 100, 2},
          get,
          items,
          result,
          ResultOk{5, 1, 1},
          Stats{6},
          stats,
          Ping{},
          ErrorMsg{7, kErrBadRequest, "why"},
          Shutdown{"master exit"},
          Goodbye{{3}},
          Release{{4, 5}},
          Cancel{6},
          Ack{8, {9, 10}},
          AckOk{8, 1, 1},
          Peek{9, "failed", 12, 50},
          Retry{10, {13, 14}},
          RetryOk{10, {{13, 200}}, 1},
          Purge{11, "tasks"},
          PurgeOk{11, 7}};
}

TEST(Message, EveryMessageRoundTrips) {
  for (const Message& m : OneOfEach()) {
    const std::string bytes = Encode(m);
    Result<Message> back = Decode(bytes);
    ASSERT_TRUE(back.ok()) << OpName(m) << ": " << back.status().message();
    EXPECT_EQ(back->index(), m.index());
    EXPECT_EQ(Encode(*back), bytes) << OpName(m);
  }
}

TEST(Message, FieldsSurviveTheRoundTrip) {
  std::vector<Message> all = OneOfEach();
  Result<Message> w = Decode(Encode(all[1]));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(std::get<Welcome>(*w).instance, 1234u);
  EXPECT_EQ(std::get<Welcome>(*w).epoch, 5678u);
  EXPECT_EQ(std::get<Welcome>(*w).heartbeat_ms, 1000u);
  ResultMsg lazy = std::get<ResultMsg>(all[6]);
  EXPECT_FALSE(std::get<ResultMsg>(*Decode(Encode(lazy))).lazy_ack);
  lazy.lazy_ack = true;
  Result<Message> l = Decode(Encode(lazy));
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(std::get<ResultMsg>(*l).lazy_ack);
  EXPECT_EQ(std::get<ResultMsg>(*l).results.size(), 2u);
  std::string bye = Encode(Goodbye{{4, 5}});
  Result<Message> g = Decode(bye);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(std::get<Goodbye>(*g).release, (std::vector<uint64_t>{4, 5}));

  std::string bytes = Encode(all[5]);  // items
  Result<Message> m = Decode(bytes);
  ASSERT_TRUE(m.ok());
  const Items& items = std::get<Items>(*m);
  ASSERT_EQ(items.items.size(), 3u);
  EXPECT_EQ(items.items[0].id, 9u);
  EXPECT_FALSE(items.items[0].has_outcome);
  EXPECT_EQ(Value::FromTrusted(items.items[0].arg).AsInt(), 7);
  EXPECT_TRUE(items.items[1].has_outcome);
  EXPECT_FALSE(items.items[1].outcome.ok);
  EXPECT_EQ(items.items[1].outcome.error, "bad input");
  EXPECT_EQ(items.items[1].attempt, 3u);
  EXPECT_EQ(Value::FromTrusted(items.items[2].outcome.value).AsInt(), 49);
  EXPECT_EQ(items.items[2].outcome.worker, "w2");

  bytes = Encode(all[2]);  // put
  m = Decode(bytes);
  ASSERT_TRUE(m.ok());
  const Put& put = std::get<Put>(*m);
  EXPECT_EQ(put.reply_to, "mine");
  EXPECT_EQ(put.items[1].timeout_ms, 5000u);
  EXPECT_EQ(put.items[0].timeout_ms, 0u);
}

TEST(Message, WorkerFaultIsAnOptionalSixthResultElement) {
  TaskResult fault{4, false, {}, "cannot write out/", 2, false};
  fault.worker_fault = true;
  const TaskResult plain{5, false, {}, "no", 3, true};
  ResultMsg sent;
  sent.results = {fault, plain, TaskResult{6, true, kSeven, {}, 1, true}};
  const std::string bytes = Encode(sent);
  Result<Message> m = Decode(bytes);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const std::vector<TaskResult>& back = std::get<ResultMsg>(*m).results;
  ASSERT_EQ(back.size(), 3u);
  EXPECT_TRUE(back[0].worker_fault);
  EXPECT_FALSE(back[0].retry);
  EXPECT_EQ(back[0].error, "cannot write out/");
  EXPECT_FALSE(back[1].worker_fault);
  EXPECT_FALSE(back[2].worker_fault);
  EXPECT_EQ(Encode(*m), bytes);
  // Only a set flag is written, so a result without it is byte for byte
  // what an older worker sends: [5, false, "no", 3, true].
  std::string old;
  MsgpackWriter(&old).Array(5).Uint(5).Bool(false).Str("no").Uint(3).Bool(true);
  EXPECT_NE(bytes.find(old), std::string::npos);
  std::string six;
  MsgpackWriter(&six)
      .Array(6)
      .Uint(4)
      .Bool(false)
      .Str("cannot write out/")
      .Uint(2)
      .Bool(false)
      .Bool(true);
  EXPECT_NE(bytes.find(six), std::string::npos);
}

TEST(Message, AttemptIsAnOptionalSeventhResultElementOfFailures) {
  TaskResult failed{4, false, {}, "boom", 2, true};
  failed.attempt = 3;
  TaskResult done{5, true, kSeven, {}, 1, true};
  done.attempt = 3;  // a success's delivery does not matter: not written
  ResultMsg sent;
  sent.results = {failed, done};
  const std::string bytes = Encode(sent);
  Result<Message> m = Decode(bytes);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const std::vector<TaskResult>& back = std::get<ResultMsg>(*m).results;
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].attempt, 3u);
  EXPECT_FALSE(back[0].worker_fault);
  EXPECT_EQ(back[1].attempt, 0u);
  EXPECT_EQ(Encode(*m), bytes);
  // [4, false, "boom", 2, true, false, 3]: worker_fault is written (false)
  // to keep attempt in its place.
  std::string seven;
  MsgpackWriter(&seven)
      .Array(7)
      .Uint(4)
      .Bool(false)
      .Str("boom")
      .Uint(2)
      .Bool(true)
      .Bool(false)
      .Uint(3);
  EXPECT_NE(bytes.find(seven), std::string::npos);
  // A larger attempt than 2^32-1 reads clamped.
  std::string big;
  MsgpackWriter w(&big);
  w.Map(3).Key("op").Str("result").Key("rid").Uint(1).Key("results").Array(1);
  w.Array(7).Uint(4).Bool(false).Str("boom").Uint(2).Bool(true).Bool(false).Uint(uint64_t{1} << 40);
  Result<Message> clamped = Decode(big);
  ASSERT_TRUE(clamped.ok()) << clamped.status().message();
  EXPECT_EQ(std::get<ResultMsg>(*clamped).results[0].attempt, UINT32_MAX);
}

// Encodes a map from key/value writers, for hand-made messages.
std::string Map(
    std::initializer_list<std::pair<std::string, std::function<void(MsgpackWriter&)>>> fields) {
  std::string b;
  MsgpackWriter w(&b);
  w.Map(static_cast<uint32_t>(fields.size()));
  for (const auto& [k, v] : fields) {
    w.Key(k);
    v(w);
  }
  return b;
}

TEST(Message, MissingOptionalFieldsTakeDefaultsAndUnknownOnesAreIgnored) {
  const std::string b = Map({{"op", [](MsgpackWriter& w) { w.Str("get"); }},
                             {"queue", [](MsgpackWriter& w) { w.Str("q"); }},
                             {"future_field", [](MsgpackWriter& w) { w.Array(1).Map(0); }}});
  Result<Message> m = Decode(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const Get& g = std::get<Get>(*m);
  EXPECT_EQ(g.max, 1u);
  EXPECT_EQ(g.timeout_ms, 0u);
  EXPECT_FALSE(g.lease);
  EXPECT_TRUE(g.kinds.empty());
}

TEST(Message, ItemsMayGrowNewTrailingElements) {
  const std::string b =
      Map({{"op", [](MsgpackWriter& w) { w.Str("put"); }},
           {"queue", [](MsgpackWriter& w) { w.Str("q"); }},
           {"items", [](MsgpackWriter& w) {
              w.Array(1).Array(5).Str("square").Uint(3).Nil().Str("later").Array(0);
            }}});
  Result<Message> m = Decode(b);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(std::get<Put>(*m).items.size(), 1u);
}

void ExpectRejected(const std::string& bytes, const std::string& why_contains) {
  Result<Message> m = Decode(bytes);
  ASSERT_FALSE(m.ok()) << "accepted " << ::testing::PrintToString(bytes);
  EXPECT_NE(m.status().message().find(why_contains), std::string::npos) << m.status().message();
}

TEST(Message, HostileAndMalformedInputIsRejectedWithAReason) {
  ExpectRejected("", "must be a msgpack map");
  ExpectRejected("\x93\x01\x02\x03", "must be a msgpack map");
  ExpectRejected(std::string("\xdf\xff\xff\xff\xff", 5), "truncated");
  std::string many;
  MsgpackWriter w(&many);
  w.Map(kMaxEnvelopeFields + 1);
  for (uint32_t i = 0; i <= kMaxEnvelopeFields; ++i) w.Key("k" + std::to_string(i)).Nil();
  ExpectRejected(many, "too many fields");
  ExpectRejected(Map({{"op", [](MsgpackWriter& w) { w.Str("nope"); }}}), "unknown op 'nope'");
  ExpectRejected(Map({{"rid", [](MsgpackWriter& w) { w.Uint(1); }}}), "field 'op' is missing");
  ExpectRejected(Map({{"op", [](MsgpackWriter& w) { w.Uint(1); }}}), "field 'op' must be a string");
  ExpectRejected(Map({{"op", [](MsgpackWriter& w) { w.Str("get"); }}}), "field 'queue' is missing");
  ExpectRejected(Map({{"op", [](MsgpackWriter& w) { w.Str("get"); }},
                      {"queue", [](MsgpackWriter& w) { w.Str("q"); }},
                      {"max", [](MsgpackWriter& w) { w.Int(-1); }}}),
                 "field 'max' must be a non-negative integer");
  ExpectRejected(Map({{"op", [](MsgpackWriter& w) { w.Str("put"); }},
                      {"queue", [](MsgpackWriter& w) { w.Str("q"); }},
                      {"items", [](MsgpackWriter& w) { w.Array(1).Array(1).Str("square"); }}}),
                 "at least 2 elements");
  ExpectRejected(Map({{"op", [](MsgpackWriter& w) { w.Str("put"); }},
                      {"queue", [](MsgpackWriter& w) { w.Str(std::string(300, 'q')); }},
                      {"items", [](MsgpackWriter& w) { w.Array(0); }}}),
                 "longer than 255 bytes");
  // A put claiming 2^32 items in a few bytes fails before any allocation.
  std::string huge = Map({{"op", [](MsgpackWriter& w) { w.Str("put"); }},
                          {"queue", [](MsgpackWriter& w) { w.Str("q"); }}});
  huge[0] = '\x83';
  huge += std::string("\xa5items\xdd\xff\xff\xff\xff", 11);
  ExpectRejected(huge, "more than 65536 elements");
  // Trailing bytes after a complete map.
  ExpectRejected(Encode(Ping{}) + "x", "trailing bytes");
  // Map keys that are not strings.
  ExpectRejected(std::string("\x81\x01\x02", 3), "keys must be strings");
}

TEST(Message, EveryTruncationOfEveryMessageIsRejected) {
  for (const Message& m : OneOfEach()) {
    const std::string bytes = Encode(m);
    for (std::size_t cut = 0; cut < bytes.size(); ++cut)
      EXPECT_FALSE(Decode(std::string_view(bytes).substr(0, cut)).ok())
          << OpName(m) << " cut at " << cut;
  }
}

TEST(Message, ValuesNestedToTheLimitFitInTheItemsReplyThatCarriesThem) {
  std::string deep(kMaxDepth, '\x91');  // a value 32 levels deep
  deep.push_back('\x01');
  ResultMsg r;
  r.results = {TaskResult{1, true, deep, {}, 0, true}};
  ASSERT_TRUE(Decode(Encode(r)).ok());
  Items items;
  items.items = {Entry{1, "k", deep, 1, true, Outcome{true, deep, {}, "w", 0}}};
  Result<Message> m = Decode(Encode(items));
  ASSERT_TRUE(m.ok()) << m.status().message();
  std::string deeper = "\x91" + deep;  // 33 levels: refused where it enters
  r.results = {TaskResult{1, true, deeper, {}, 0, true}};
  EXPECT_FALSE(Decode(Encode(r)).ok());
}

TEST(Message, ValuesAreLimitedInSize) {
  const std::string big = Value::Bin(std::string(kMaxValueBytes, 'x')).packed();
  Put p;
  p.queue = "q";
  p.items = {NewTask{"k", big, 0}};
  Result<Message> m = Decode(Encode(p));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("larger than 16 MiB"), std::string::npos)
      << m.status().message();
}

TEST(Message, TheRidOfABadMessageCanStillBeRead) {
  const std::string b = Map({{"op", [](MsgpackWriter& w) { w.Str("get"); }},
                             {"rid", [](MsgpackWriter& w) { w.Uint(77); }}});  // no queue
  EXPECT_FALSE(Decode(b).ok());
  EXPECT_EQ(PeekRid(b), 77u);
  EXPECT_EQ(PeekRid("\xc1"), 0u);
}

// PROTOCOL.md section 8: the rid is read up to the first "rid" field; what
// comes after it does not hide it, what comes before it does.
TEST(Message, TheRidIsReadUpToItsFieldWhateverFollows) {
  Put put;
  put.rid = 77;
  put.queue = "q";
  put.items = {NewTask{"square", kSeven, 0}};
  const std::string good = Encode(put);
  ASSERT_TRUE(Decode(good).ok());
  const std::size_t arg = good.rfind(kSeven);
  auto damaged = [&](std::string b) {
    EXPECT_FALSE(Decode(b).ok());
    return PeekRid(b);
  };
  EXPECT_EQ(damaged(good + "\x01"), 77u) << "trailing bytes";
  std::string bad_arg = good;
  bad_arg[arg] = '\xc1';
  EXPECT_EQ(damaged(bad_arg), 77u) << "0xc1 in a task argument";
  std::string long_array = good;
  long_array[good.rfind('\x91')] = '\xdc';                // items: array 16 ...
  long_array.insert(good.rfind('\x91') + 1, "\xff\xff");  // ... of 65535 elements
  EXPECT_EQ(damaged(long_array), 77u) << "an array claiming more elements than bytes";
  EXPECT_EQ(damaged(good.substr(0, good.size() - 3)), 77u) << "truncated after the rid";
  // Before the rid: the op's value, the map header.
  std::string bad_op = good;
  bad_op[good.find("put") - 1] = '\xc1';
  EXPECT_EQ(damaged(bad_op), 0u);
  std::string big_map = good;
  big_map[0] = '\xde';  // map 16 of 65535 fields
  big_map.insert(1, "\xff\xff");
  EXPECT_EQ(damaged(big_map), 0u);
  EXPECT_EQ(damaged(Map({{"op", [](MsgpackWriter& w) { w.Str("get"); }},
                         {"rid", [](MsgpackWriter& w) { w.Int(-1); }}})),
            0u)
      << "not a non-negative integer";
}

TEST(Message, UnknownOpIsRecognisable) {
  Result<Message> m = Decode(Map({{"op", [](MsgpackWriter& w) { w.Str("teleport"); }}}));
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(IsUnknownOp(m.status()));
  EXPECT_FALSE(IsUnknownOp(Decode("\x01").status()));
}

TEST(Message, BatchesAreLimited) {
  Put put;
  put.queue = "q";
  put.items.assign(kMaxBatch + 1, NewTask{"square", kSeven, 0});
  ExpectRejected(Encode(put), "more than 65536 elements");
  put.items.resize(kMaxBatch);
  EXPECT_TRUE(Decode(Encode(put)).ok());
}

}  // namespace
// The bytes docs/PROTOCOL.md section 9 shows for the admin requests.
TEST(Message, AdminRequestsEncodeAsTheProtocolShows) {
  auto hex = [](const std::string& bytes) {
    std::string out;
    char b[4];
    for (unsigned char c : bytes) {
      std::snprintf(b, sizeof b, out.empty() ? "%02x" : " %02x", c);
      out += b;
    }
    return out;
  };
  EXPECT_EQ(hex(Encode(Peek{9, "failed", 0, 100})),
            "85 a2 6f 70 a4 70 65 65 6b a3 72 69 64 09 a5 71 75 65 75 65 a6 66 61 69 6c 65 64 a5 "
            "61 66 74 65 72 00 a3 6d 61 78 64");
  EXPECT_EQ(hex(Encode(Retry{10, {4}})),
            "83 a2 6f 70 a5 72 65 74 72 79 a3 72 69 64 0a a3 69 64 73 91 04");
  EXPECT_EQ(hex(Encode(RetryOk{10, {{4, 5}}, 0})),
            "84 a2 6f 70 a8 72 65 74 72 79 5f 6f 6b a3 72 69 64 0a a7 72 65 74 72 69 65 64 91 92 "
            "04 05 a7 73 6b 69 70 70 65 64 00");
  EXPECT_EQ(hex(Encode(Purge{11, "tasks"})),
            "83 a2 6f 70 a5 70 75 72 67 65 a3 72 69 64 0b a5 71 75 65 75 65 a5 74 61 73 6b 73");
  EXPECT_EQ(hex(Encode(PurgeOk{11, 2})),
            "83 a2 6f 70 a8 70 75 72 67 65 5f 6f 6b a3 72 69 64 0b a7 72 65 6d 6f 76 65 64 02");
}

// stats.queue (docs/PROTOCOL.md 5.9) is written only when set: a stats
// without it is the bytes section 9 shows.
TEST(Message, StatsNamesAQueueOnlyWhenGivenOne) {
  EXPECT_EQ(Encode(Stats{7}), std::string("\x82\xa2op\xa5stats\xa3rid\x07", 15));
  EXPECT_EQ(Encode(Stats{8, "job.k3f9x2ab7m"}),
            std::string("\x83\xa2op\xa5stats\xa3rid\x08\xa5queue\xaejob.k3f9x2ab7m", 36));
  const std::string named = Encode(Stats{7, "job.k3f9x2ab7m"});
  Result<Message> m = Decode(named);
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_TRUE(std::holds_alternative<Stats>(*m));
  EXPECT_EQ(std::get<Stats>(*m).rid, 7u);
  EXPECT_EQ(std::get<Stats>(*m).queue, "job.k3f9x2ab7m");
  EXPECT_EQ(Encode(*m), named);
}

}  // namespace taskq
