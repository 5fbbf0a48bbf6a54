#include "proto/msgpack_reader.h"

#include <gtest/gtest.h>

#include <msgpack.hpp>
#include <random>
#include <string>

#include "proto/msgpack_writer.h"

namespace taskq {
namespace {

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

TEST(MsgpackReader, ReadsEachType) {
  std::string b;
  MsgpackWriter w(&b);
  w.Nil()
      .Bool(true)
      .Uint(7)
      .Uint(300)
      .Uint(UINT64_MAX)
      .Int(-5)
      .Int(-70000)
      .Double(2.5)
      .Str("hi")
      .Bin("\x01\x02");
  w.Array(2).Uint(1).Str("x").Map(1).Key("k").Nil();
  MsgpackReader r(b);
  bool t;
  uint64_t u;
  int64_t i;
  double d;
  std::string_view s;
  uint32_t n;
  EXPECT_TRUE(r.ReadNil());
  EXPECT_TRUE(r.ReadBool(&t) && t);
  EXPECT_TRUE(r.ReadUint(&u) && u == 7);
  EXPECT_TRUE(r.ReadUint(&u) && u == 300);
  EXPECT_TRUE(r.ReadUint(&u) && u == UINT64_MAX);
  EXPECT_TRUE(r.ReadInt(&i) && i == -5);
  EXPECT_TRUE(r.ReadInt(&i) && i == -70000);
  EXPECT_TRUE(r.ReadDouble(&d) && d == 2.5);
  EXPECT_TRUE(r.ReadStr(&s) && s == "hi");
  EXPECT_TRUE(r.ReadBin(&s) && s == "\x01\x02");
  EXPECT_TRUE(r.ReadArrayHeader(&n) && n == 2);
  EXPECT_TRUE(r.ReadUint(&u) && u == 1);
  EXPECT_TRUE(r.ReadStr(&s) && s == "x");
  EXPECT_TRUE(r.ReadMapHeader(&n) && n == 1);
  EXPECT_TRUE(r.Skip());
  EXPECT_TRUE(r.Skip());
  EXPECT_TRUE(r.at_end());
}

TEST(MsgpackReader, WrongTypeConsumesNothing) {
  std::string b;
  MsgpackWriter(&b).Str("text");
  MsgpackReader r(b);
  uint64_t u;
  EXPECT_FALSE(r.ReadUint(&u));
  EXPECT_FALSE(r.truncated());
  std::string_view s;
  EXPECT_TRUE(r.ReadStr(&s));
}

TEST(MsgpackReader, NegativeIsNotUnsignedAndBigUnsignedIsNotSigned) {
  std::string b;
  MsgpackWriter(&b).Int(-1).Uint(UINT64_MAX);
  MsgpackReader r(b);
  uint64_t u;
  int64_t i;
  EXPECT_FALSE(r.ReadUint(&u));
  EXPECT_TRUE(r.ReadInt(&i) && i == -1);
  EXPECT_FALSE(r.ReadInt(&i));
  EXPECT_TRUE(r.ReadUint(&u));
}

TEST(MsgpackReader, SignedEncodingOfAPositiveValueIsUnsignedToo) {
  const std::string b = Bytes({0xd1, 0x01, 0x00});  // int16 256
  MsgpackReader r(b);
  uint64_t u;
  EXPECT_TRUE(r.ReadUint(&u));
  EXPECT_EQ(u, 256u);
}

TEST(MsgpackReader, HugeCountsFailAtTheHeaderWithoutAllocating) {
  // 5 bytes claiming 2^32-1 elements: msgpack::unpack would allocate ~100 GB.
  for (const std::string& b :
       {Bytes({0xdd, 0xff, 0xff, 0xff, 0xff}), Bytes({0xdf, 0xff, 0xff, 0xff, 0xff}),
        Bytes({0xdb, 0xff, 0xff, 0xff, 0xff}), Bytes({0xc6, 0xff, 0xff, 0xff, 0xff})}) {
    MsgpackReader r(b);
    uint32_t n;
    EXPECT_FALSE(r.ReadArrayHeader(&n));
    EXPECT_FALSE(r.ReadMapHeader(&n));
    EXPECT_FALSE(r.Skip());
    EXPECT_FALSE(IsOneValue(b));
  }
}

TEST(MsgpackReader, CountsAreCheckedAgainstTheLimit) {
  std::string b;
  MsgpackWriter w(&b);
  w.Array(10);
  for (int i = 0; i < 10; ++i) w.Uint(i);
  MsgpackReader r(b);
  uint32_t n;
  EXPECT_FALSE(r.ReadArrayHeader(&n, 9));
  EXPECT_TRUE(r.ReadArrayHeader(&n, 10));
}

TEST(MsgpackReader, NestingBeyondTheDepthLimitFails) {
  std::string deep(kMaxDepth + 1, '\x91');  // [[[[...]]]]
  deep.push_back('\xc0');
  EXPECT_FALSE(IsOneValue(deep));
  std::string ok(kMaxDepth, '\x91');
  ok.push_back('\xc0');
  EXPECT_TRUE(IsOneValue(ok));
}

TEST(MsgpackReader, TruncationIsReported) {
  std::string b;
  MsgpackWriter(&b).Str("hello world");
  for (std::size_t cut = 0; cut < b.size(); ++cut) {
    MsgpackReader r(std::string_view(b).substr(0, cut));
    std::string_view s;
    EXPECT_FALSE(r.ReadStr(&s));
    EXPECT_TRUE(r.truncated()) << cut;
  }
}

TEST(MsgpackReader, UnusedByteC1IsInvalid) {
  EXPECT_FALSE(IsOneValue(Bytes({0xc1})));
  EXPECT_FALSE(IsOneValue(Bytes({0x92, 0x01, 0xc1})));
}

TEST(MsgpackReader, TrailingBytesMakeItNotOneValue) {
  EXPECT_TRUE(IsOneValue(Bytes({0x01})));
  EXPECT_FALSE(IsOneValue(Bytes({0x01, 0x02})));
  EXPECT_FALSE(IsOneValue(""));
}

TEST(MsgpackReader, SkipReturnsTheValueBytes) {
  std::string b;
  MsgpackWriter(&b).Array(2).Str("a").Map(1).Key("b").Int(-3);
  b += "tail";
  MsgpackReader r(b);
  std::string_view raw;
  ASSERT_TRUE(r.Skip(&raw));
  EXPECT_EQ(raw, std::string_view(b).substr(0, b.size() - 4));
}

// Decodes o's bytes with the reader and compares with msgpack-c's tree.
bool SameAs(MsgpackReader& r, const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL:
      return r.ReadNil();
    case msgpack::type::BOOLEAN: {
      bool b;
      return r.ReadBool(&b) && b == o.via.boolean;
    }
    case msgpack::type::POSITIVE_INTEGER: {
      uint64_t u;
      return r.ReadUint(&u) && u == o.via.u64;
    }
    case msgpack::type::NEGATIVE_INTEGER: {
      int64_t i;
      return r.ReadInt(&i) && i == o.via.i64;
    }
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: {
      double d;
      return r.ReadDouble(&d) && (d == o.via.f64 || (d != d && o.via.f64 != o.via.f64));
    }
    case msgpack::type::STR: {
      std::string_view s;
      return r.ReadStr(&s) && s == std::string_view(o.via.str.ptr, o.via.str.size);
    }
    case msgpack::type::BIN: {
      std::string_view s;
      return r.ReadBin(&s) && s == std::string_view(o.via.bin.ptr, o.via.bin.size);
    }
    case msgpack::type::EXT: {
      int8_t t;
      std::string_view s;
      return r.ReadExt(&t, &s) && t == o.via.ext.type() &&
             s == std::string_view(o.via.ext.data(), o.via.ext.size);
    }
    case msgpack::type::ARRAY: {
      uint32_t n;
      if (!r.ReadArrayHeader(&n) || n != o.via.array.size) return false;
      for (uint32_t i = 0; i < n; ++i)
        if (!SameAs(r, o.via.array.ptr[i])) return false;
      return true;
    }
    case msgpack::type::MAP: {
      uint32_t n;
      if (!r.ReadMapHeader(&n) || n != o.via.map.size) return false;
      for (uint32_t i = 0; i < n; ++i)
        if (!SameAs(r, o.via.map.ptr[i].key) || !SameAs(r, o.via.map.ptr[i].val)) return false;
      return true;
    }
  }
  return false;
}

msgpack::unpack_limit Limits() {
  return msgpack::unpack_limit(kMaxContainer, kMaxContainer, 1 << 20, 1 << 20, 1 << 20, kMaxDepth);
}

// Random short byte strings: the reader accepts exactly what msgpack-c
// accepts, reads the same length, and sees the same values.
TEST(MsgpackReader, AgreesWithMsgpackCOnRandomInput) {
  std::mt19937 rng(42);
  // Bytes biased to short headers, so many inputs are valid.
  const std::string alphabet = Bytes({0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x90, 0x91, 0x92, 0x93,
                                      0xa0, 0xa1, 0xa3, 0xc0, 0xc2, 0xc3, 0xc4, 0xca, 0xcb, 0xcc,
                                      0xcd, 0xd0, 0xd4, 0xd9, 0xdc, 0xde, 0xe0, 0xff, 0x41, 0x02});
  int agreed_valid = 0;
  for (int iter = 0; iter < 200000; ++iter) {
    std::string in(1 + rng() % 12, '\0');
    for (char& c : in) c = alphabet[rng() % alphabet.size()];
    MsgpackReader r(in);
    const bool ours = r.Skip();
    const std::size_t our_len = in.size() - r.remaining();
    bool theirs = false;
    std::size_t off = 0;
    msgpack::object_handle h;
    try {
      h = msgpack::unpack(in.data(), in.size(), off, nullptr, nullptr, Limits());
      theirs = true;
    } catch (const std::exception&) {
    }
    ASSERT_EQ(ours, theirs) << "input " << ::testing::PrintToString(in);
    if (!ours) continue;
    ASSERT_EQ(our_len, off);
    MsgpackReader again(in);
    ASSERT_TRUE(SameAs(again, h.get())) << ::testing::PrintToString(in);
    ++agreed_valid;
  }
  EXPECT_GT(agreed_valid, 10000);  // the input really exercised valid values
}

}  // namespace
}  // namespace taskq
