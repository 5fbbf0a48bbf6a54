// A message's rid (the request it makes or answers), whatever its type: the
// master answers with the rid of what it could read, and a client matches
// replies to requests by it.
#ifndef TASKQ_PROTO_RID_H_
#define TASKQ_PROTO_RID_H_

#include <concepts>
#include <cstdint>
#include <type_traits>
#include <variant>

#include "proto/message.h"

namespace taskq {

// Where m keeps its rid: a pointer into m (const when m is), or null for a
// message that has none (ping, shutdown).
template <typename M>
requires std::same_as<std::remove_const_t<M>, Message>
auto RidField(M& m) {
  using Ptr = std::conditional_t<std::is_const_v<M>, const uint64_t*, uint64_t*>;
  return std::visit(
      [](auto& v) -> Ptr {
        if constexpr (requires { v.rid; })
          return &v.rid;
        else
          return nullptr;
      },
      m);
}

// m's rid; 0 for a message that has none.
inline uint64_t RidOf(const Message& m) {
  const uint64_t* rid = RidField(m);
  return rid ? *rid : 0;
}

}  // namespace taskq

#endif  // TASKQ_PROTO_RID_H_
