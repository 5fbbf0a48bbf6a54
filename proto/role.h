// Role: what a peer's key lets it do (docs/PROTOCOL.md 2.5). The authkey
// itself is the admin's; the restricted keys it issues (proto/keys.h) are a
// worker's or a submitter's. The master learns a connection's role from ZAP
// (master/zap_handler.h) and the broker refuses what the role may not do.
#ifndef TASKQ_PROTO_ROLE_H_
#define TASKQ_PROTO_ROLE_H_

#include <optional>
#include <string_view>

namespace taskq {

enum class Role { kAdmin, kWorker, kSubmitter };

// "admin", "worker", "submitter": the ZAP user id, and the role named in a
// credential ("taskq-worker-v1:...").
constexpr std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kWorker:
      return "worker";
    case Role::kSubmitter:
      return "submitter";
    case Role::kAdmin:
      break;
  }
  return "admin";
}

constexpr std::optional<Role> RoleFromName(std::string_view name) {
  for (Role r : {Role::kAdmin, Role::kWorker, Role::kSubmitter})
    if (RoleName(r) == name) return r;
  return std::nullopt;
}

}  // namespace taskq

#endif  // TASKQ_PROTO_ROLE_H_
