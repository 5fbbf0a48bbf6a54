#include "master/roles.h"

#include "master/broker.h"
#include "master/status_report.h"

namespace taskq {
namespace {

// The default reply queue (put.reply_to), shared by every producer that
// keeps it: outcomes, not tasks.
constexpr std::string_view kResultsQueue = "results";

std::string Cannot(Role role, std::string_view what) {
  return "a " + std::string(RoleName(role)) + " key cannot " + std::string(what);
}

std::string Quoted(std::string_view queue) { return "'" + std::string(queue) + "'"; }

// What only the authkey may do: look into queues and change them wholesale.
std::string AdminOnly(Role role, const Message& m) {
  const char* what = std::holds_alternative<Peek>(m)    ? "peek at queues"
                     : std::holds_alternative<Retry>(m) ? "retry failed tasks"
                                                        : "purge queues";
  return Cannot(role, what) + ": that takes the authkey itself";
}

// A worker takes tasks leased, runs them and reports: nothing else.
std::string WorkerRefusal(const Message& m) {
  constexpr Role kRole = Role::kWorker;
  if (const auto* h = std::get_if<Hello>(&m); h && h->role != "worker")
    return Cannot(kRole, "say hello as a '" + std::string(h->role) +
                             "': it runs tasks (hello role 'worker')");
  if (std::holds_alternative<Put>(m)) return Cannot(kRole, "put tasks");
  if (const auto* g = std::get_if<Get>(&m)) {
    if (!g->lease) return Cannot(kRole, "take entries without a lease: it runs tasks (lease true)");
    if (g->queue == kFailedQueue || g->queue == kResultsQueue || IsJobQueue(g->queue))
      return Cannot(kRole, "take from " + Quoted(g->queue) +
                               ": it takes tasks, not outcomes or failure records");
  }
  if (std::holds_alternative<Ack>(m)) return Cannot(kRole, "ack outcomes: it takes none");
  if (std::holds_alternative<Stats>(m)) return Cannot(kRole, "ask for stats");
  if (std::holds_alternative<Peek>(m) || std::holds_alternative<Retry>(m) ||
      std::holds_alternative<Purge>(m))
    return AdminOnly(kRole, m);
  return {};
}

// A submitter puts tasks whose outcomes go to a job queue, collects them,
// and looks at stats: nothing else.
std::string SubmitterRefusal(const Message& m) {
  constexpr Role kRole = Role::kSubmitter;
  if (const auto* h = std::get_if<Hello>(&m); h && h->role != "client")
    return Cannot(kRole, "say hello as a '" + std::string(h->role) +
                             "': it puts tasks and collects outcomes (hello role 'client')");
  if (const auto* p = std::get_if<Put>(&m)) {
    if (p->queue == kFailedQueue)
      return Cannot(kRole, "put into " + Quoted(kFailedQueue) + ", the master's failure records");
    if (p->queue == kResultsQueue || p->queue.rfind(kJobQueuePrefix, 0) == 0)
      return Cannot(kRole, "put into " + Quoted(p->queue) +
                               ": it holds outcomes, and a get there would take the tasks as "
                               "someone's outcomes");
    if (!IsJobQueue(p->reply_to))
      return Cannot(kRole,
                    "put tasks whose outcomes go to " + Quoted(p->reply_to) +
                        ": its outcomes go to a job queue, job.ID, which only those who know "
                        "the id can read");
  }
  if (const auto* g = std::get_if<Get>(&m); g && !IsJobQueue(g->queue))
    return Cannot(kRole, "take from " + Quoted(g->queue) +
                             ": it collects outcomes from job queues (job.ID) only");
  if (std::holds_alternative<ResultMsg>(m)) return Cannot(kRole, "report results");
  if (std::holds_alternative<Peek>(m) || std::holds_alternative<Retry>(m) ||
      std::holds_alternative<Purge>(m))
    return AdminOnly(kRole, m);
  return {};
}

}  // namespace

std::string Refusal(Role role, const Message& m) {
  switch (role) {
    case Role::kWorker:
      return WorkerRefusal(m);
    case Role::kSubmitter:
      return SubmitterRefusal(m);
    case Role::kAdmin:
      break;
  }
  return {};
}

bool IsJobQueue(std::string_view queue) { return !JobIdOf(queue).empty(); }

}  // namespace taskq
