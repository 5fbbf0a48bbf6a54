// UTF-8 checking, for the JSON writer (PackedToJson) and --exec output.
#ifndef TASKQ_PROTO_UTF8_H_
#define TASKQ_PROTO_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace taskq {

// The length of the valid UTF-8 sequence starting at s[i], or 0 if there is
// none there (a stray continuation byte, an overlong form, a surrogate, a
// code point past U+10FFFF, or a sequence cut short).
inline std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  const std::size_t n = c < 0x80         ? 1
                        : (c >> 5) == 6  ? 2
                        : (c >> 4) == 14 ? 3
                        : (c >> 3) == 30 ? 4
                                         : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((b(i + k) & 0xc0) != 0x80) return 0;
  if (n == 2 && c < 0xc2) return 0;  // overlong
  if (n == 3 && ((c == 0xe0 && b(i + 1) < 0xa0) || (c == 0xed && b(i + 1) >= 0xa0)))
    return 0;  // overlong, surrogate
  if (n == 4 && (c > 0xf4 || (c == 0xf0 && b(i + 1) < 0x90) || (c == 0xf4 && b(i + 1) >= 0x90)))
    return 0;
  return n;
}

}  // namespace taskq

#endif  // TASKQ_PROTO_UTF8_H_
