// What each role may ask of the master (docs/PROTOCOL.md 2.5): the admin
// (the authkey itself, and task_master's own job) everything; a worker's key
// only what running tasks takes; a submitter's key only putting tasks and
// collecting its jobs' outcomes. The Broker asks Refusal before it acts on a
// message, and MayTake for each entry a get would hand out.
//
// Thread: any (pure functions).
#ifndef TASKQ_MASTER_ROLES_H_
#define TASKQ_MASTER_ROLES_H_

#include <string>
#include <string_view>

#include "proto/message.h"
#include "proto/role.h"

namespace taskq {

// Empty when a peer of this role may send m; else the message of the
// forbidden error, naming the operation and the role ("a worker key cannot
// put tasks").
std::string Refusal(Role role, const Message& m);

// Whether a get from a peer of this role may be handed an entry: a worker's
// only tasks, a submitter's only outcomes; others are stepped over, so
// neither can take what its role does not (even from a queue that holds
// both).
inline bool MayTake(Role role, bool outcome) {
  return role == Role::kAdmin || outcome == (role == Role::kSubmitter);
}

// A job's reply queue: "job." and an id (docs/PROTOCOL.md 7.10). Its name is
// the job's capability: a submitter reads, and sees in stats, only those it
// put to or names.
bool IsJobQueue(std::string_view queue);

}  // namespace taskq

#endif  // TASKQ_MASTER_ROLES_H_
