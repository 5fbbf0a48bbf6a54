// Text for people: a user's value or a peer's words cut to fit a line.
#ifndef TASKQ_PROTO_TEXT_H_
#define TASKQ_PROTO_TEXT_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace taskq {

// s itself if it has at most n bytes, else its first n bytes and then more.
inline std::string Clip(std::string_view s, std::size_t n, std::string_view more = "...") {
  if (s.size() <= n) return std::string(s);
  std::string out(s.substr(0, n));
  out += more;
  return out;
}

}  // namespace taskq

#endif  // TASKQ_PROTO_TEXT_H_
