// CRC-32C: the portable table-driven path and the one Crc32c takes (SSE 4.2
// where the CPU has it) must agree, on the standard's vectors and on buffers
// of every length and alignment, since either may have written a journal
// the other reads.
#include "master/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace taskq {
namespace {

uint32_t Portable(const std::string& s) { return Crc32cPortable(s.data(), s.size()); }
uint32_t Chosen(const std::string& s) { return Crc32c(s.data(), s.size()); }

// 0, 1, ..., 31, or 31, 30, ..., 0.
std::string Counting(bool up) {
  std::string s;
  for (int i = 0; i < 32; ++i) s.push_back(static_cast<char>(up ? i : 31 - i));
  return s;
}

// RFC 3720 (iSCSI), appendix B.4, and the usual check value.
TEST(Crc32c, BothPathsGiveTheStandardValues) {
  const std::pair<std::string, uint32_t> vectors[] = {
      {"123456789", 0xe3069283},
      {std::string(32, '\0'), 0x8a9136aa},
      {std::string(32, '\xff'), 0x62a8ab43},
      {Counting(true), 0x46dd794e},
      {Counting(false), 0x113fdb5c},
      {"", 0x00000000},
  };
  for (const auto& [data, crc] : vectors) {
    EXPECT_EQ(Portable(data), crc) << "portable, " << data.size() << " bytes";
    EXPECT_EQ(Chosen(data), crc) << "Crc32c, " << data.size() << " bytes";
  }
}

TEST(Crc32c, BothPathsAgreeOnEveryLengthAndAlignment) {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("sse4.2"))
    GTEST_LOG_(INFO) << "no SSE 4.2 here: Crc32c takes the portable path too";
#endif
  std::mt19937 rng(42);
  std::string buffer(4096 + 16, '\0');
  for (char& c : buffer) c = static_cast<char>(rng());
  // Lengths around the 8-byte steps of both loops, at each of 8 offsets.
  for (std::size_t offset = 0; offset < 8; ++offset) {
    for (std::size_t n = 0; n <= 70; ++n) {
      const char* p = buffer.data() + offset;
      ASSERT_EQ(Crc32c(p, n), Crc32cPortable(p, n)) << n << " bytes at offset " << offset;
    }
    const char* p = buffer.data() + offset;
    ASSERT_EQ(Crc32c(p, 4096), Crc32cPortable(p, 4096)) << "4096 bytes at offset " << offset;
  }
}

TEST(Crc32c, SeesAFlippedBit) {
  std::string record = "a journal record, written whole";
  const uint32_t whole = Chosen(record);
  for (std::size_t i = 0; i < record.size() * 8; i += 7) {
    std::string damaged = record;
    damaged[i / 8] = static_cast<char>(damaged[i / 8] ^ (1 << (i % 8)));
    EXPECT_NE(Chosen(damaged), whole) << "bit " << i;
    EXPECT_NE(Portable(damaged), whole) << "bit " << i;
  }
}

}  // namespace
}  // namespace taskq
