// The taskq wire protocol: one struct per message, Encode() and Decode().
// docs/PROTOCOL.md mirrors this file exactly; change both together.
//
// Every message is one ZeroMQ frame holding one msgpack map with an "op" key.
// Anything that carries tasks or results carries an array of them, so one
// message can move many. Items inside those arrays are positional msgpack
// arrays (compact and fast); envelopes are maps (self-describing, and unknown
// keys are ignored, so fields can be added without a version bump).
//
// Views: decoded messages borrow from the bytes they were decoded from (every
// std::string_view below points into them), so they are valid only while those
// bytes live. Fields holding "raw" values are one complete msgpack value each,
// checked by the decoder; an empty raw view encodes as nil.
#ifndef TASKQ_PROTO_MESSAGE_H_
#define TASKQ_PROTO_MESSAGE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "proto/status.h"

namespace taskq {

constexpr uint32_t kProtocolVersion = 1;

// --- items carried in batches ---------------------------------------------

// A task as a producer submits it; the master assigns the id.
struct NewTask {
  std::string_view kind;
  std::string_view arg;     // raw msgpack
  uint32_t timeout_ms = 0;  // the task's time limit once leased; 0: the master's default
};

// What happened to a task, as the master reports it to whoever gets the
// task's outcome from its reply_to queue.
struct Outcome {
  bool ok = true;
  std::string_view value;   // raw msgpack, when ok
  std::string_view error;   // when !ok
  std::string_view worker;  // the worker's name
  uint64_t elapsed_us = 0;  // time the worker spent on it
};

// One entry a get hands out: a task, or (in a reply_to queue) a task's outcome.
struct Entry {
  uint64_t id = 0;
  std::string_view kind;
  std::string_view arg;  // raw msgpack
  uint32_t attempt = 1;  // 1 on first delivery; +1 each time it is handed out again
  bool has_outcome = false;
  Outcome outcome;
};

// A worker's result for one leased task.
struct TaskResult {
  uint64_t id = 0;
  bool ok = true;
  std::string_view value;  // raw msgpack, when ok
  std::string_view error;  // when !ok
  uint64_t elapsed_us = 0;
  bool retry = true;  // when !ok: may another attempt succeed?
  // When !ok: the failure is about this worker, not the task (it cannot
  // write its --out directory, a program it needs is missing).
  bool worker_fault = false;
  // The delivery this result reports on: the attempt of the entry as it was
  // handed out; 0: not said. A failure for an earlier delivery than the
  // task's current one is a duplicate (docs/PROTOCOL.md 7.5).
  uint32_t attempt = 0;
};

struct QueueStats {
  std::string_view name;
  uint64_t ready = 0;   // waiting to be handed out
  uint64_t leased = 0;  // handed to workers, outcome not in yet
  uint64_t failed = 0;  // gave up on after the last attempt
  uint64_t owed = 0;    // tasks whose outcome is still to come into this queue
};

struct WorkerStats {
  std::string_view name;
  uint64_t in_flight = 0;   // tasks leased to it now
  uint64_t capacity = 0;    // tasks it runs at once
  uint64_t done = 0;        // outcomes accepted from it
  uint64_t idle_ms = 0;     // since the master last heard from it
  uint64_t benched_ms = 0;  // it gets no tasks for this much longer; 0: not benched
};

// --- messages ---------------------------------------------------------------

struct Hello {  // peer -> master, first message on a connection
  uint32_t version = kProtocolVersion;
  std::string_view role = "client";  // "worker" or "client"
  std::string_view name;
  uint32_t capacity = 0;                // tasks the peer runs at once (workers)
  uint64_t session = 0;                 // random per process; lets a reconnect keep its leases
  uint32_t heartbeat_ms = 0;            // the peer sends something at least this often; 0: never
  std::vector<std::string_view> kinds;  // kinds of task a worker runs (for the master's warnings)
  // Tasks this process holds (running, or results not yet acknowledged),
  // and leased outcomes it has not acked: when it takes over the leases of
  // its earlier connection, only these follow it; the others were lost on
  // the way and go back.
  std::vector<uint64_t> holding;
};

struct Welcome {  // master -> peer, answers hello
  uint32_t version = kProtocolVersion;
  std::string_view master;  // the master's name
  uint64_t instance = 0;    // random per master start: a change means a restart
  // Names the master's task ids: the same while a journal (--data-dir)
  // carries the tasks over restarts, new otherwise. Results held for tasks
  // of another epoch are for ids the master does not know: drop them.
  uint64_t epoch = 0;
  uint32_t heartbeat_ms = 0;  // the master sends something at least this often
  uint32_t max_batch = 0;     // most items per message it accepts
};

struct Put {  // peer -> master
  uint64_t rid = 0;
  std::string_view queue;
  std::string_view reply_to = "results";  // queue that receives the outcomes
  uint32_t timeout_ms = 0;                // how long to wait for room in a full queue
  std::vector<NewTask> items;
  std::string_view raw_items;  // decoding sets it: the bytes of "items" as received
};

struct PutOk {  // master -> peer: ids first_id .. first_id+count-1, in order
  uint64_t rid = 0;
  uint64_t first_id = 0;
  uint64_t count = 0;
};

struct Get {  // peer -> master; parked until entries arrive or timeout_ms passes
  uint64_t rid = 0;
  std::string_view queue;
  uint32_t max = 1;
  uint32_t timeout_ms = 0;
  // true: tasks stay the master's until their result comes, and outcomes
  // until an ack removes them.
  bool lease = false;
  std::vector<std::string_view> kinds;  // only these kinds; empty: any
};

struct Items {  // master -> peer, answers get; no items means Empty
  uint64_t rid = 0;
  std::string_view queue;
  std::vector<Entry> items;
};

struct ResultMsg {   // worker -> master
  uint64_t rid = 0;  // 0: no result_ok wanted
  std::vector<TaskResult> results;
  // The result_ok may wait (kLazyAckMs) for something else going to the
  // peer: one wake-up of the peer instead of two (see PROTOCOL.md 5.7).
  bool lazy_ack = false;
};

struct ResultOk {  // master -> worker, when result.rid != 0
  uint64_t rid = 0;
  uint64_t accepted = 0;
  uint64_t duplicates = 0;  // results for tasks already answered or unknown
};

struct Stats {  // peer -> master
  uint64_t rid = 0;
  // A queue to list even where the connection's role hides it (a
  // submitter's job queue: docs/PROTOCOL.md 2.5); written only when set.
  std::string_view queue = {};
};

struct StatsOk {  // master -> peer
  uint64_t rid = 0;
  std::vector<QueueStats> queues;
  std::vector<WorkerStats> workers;
  std::vector<std::pair<std::string_view, uint64_t>> counters;
};

struct Ping {};  // either way: "still here" when nothing else was sent

struct ErrorMsg {         // master -> peer
  uint64_t rid = 0;       // the request it answers; 0 if none
  std::string_view code;  // one of the kErr* constants below
  std::string_view message;
};

struct Shutdown {  // master -> every peer that said hello
  std::string_view reason;
  // Another master on the same store carries on (task_master --store): a
  // peer given several masters moves on instead of stopping.
  bool handover = false;
};

// peer -> master: leased tasks handed back unstarted (no attempt used), and
// leased outcomes handed back uncollected.
struct Release {
  std::vector<uint64_t> ids;
};

struct Cancel {  // peer -> master: withdraws a parked get (answered by an empty items if it was)
  uint64_t rid = 0;
};

struct Goodbye {  // peer -> master, last message
  // Leased tasks handed back that this peer never started: the delivery
  // does not count as an attempt. (Leased outcomes not acked go back
  // whether listed or not.)
  std::vector<uint64_t> release;
};

// peer -> master: leased outcomes (get with lease) it has kept safe; the
// master removes them.
struct Ack {
  uint64_t rid = 0;  // 0: no ack_ok wanted
  std::vector<uint64_t> ids;
};

struct AckOk {  // master -> peer, when ack.rid != 0
  uint64_t rid = 0;
  uint64_t acked = 0;    // outcomes removed
  uint64_t unknown = 0;  // ids not leased to this connection as outcomes: nothing done
};

// peer -> master: copies of a queue's waiting entries (tasks and outcomes
// that a get could take now), lowest id first, ids above after; answered by
// items. Nothing changes: no lease, no attempt, not counted as delivered.
struct Peek {
  uint64_t rid = 0;
  std::string_view queue;
  uint64_t after = 0;
  uint32_t max = 100;
};

// peer -> master: failure records (entries of the "failed" queue) whose
// tasks are to run again, each as a new task; the record goes.
struct Retry {
  uint64_t rid = 0;
  std::vector<uint64_t> ids;
};

struct RetryOk {  // master -> peer
  uint64_t rid = 0;
  std::vector<std::pair<uint64_t, uint64_t>> retried;  // (record id, new task id)
  uint64_t skipped = 0;  // ids that are not a waiting failure record, or name no task to rerun
};

// peer -> master: removes every waiting entry of a queue (leased ones stay).
struct Purge {
  uint64_t rid = 0;
  std::string_view queue;
};

struct PurgeOk {  // master -> peer
  uint64_t rid = 0;
  uint64_t removed = 0;
};

using Message = std::variant<Hello, Welcome, Put, PutOk, Get, Items, ResultMsg, ResultOk, Stats,
                             StatsOk, Ping, ErrorMsg, Shutdown, Goodbye, Release, Cancel, Ack,
                             AckOk, Peek, Retry, RetryOk, Purge, PurgeOk>;

// Error codes carried by ErrorMsg::code (docs/PROTOCOL.md, "Errors").
inline constexpr std::string_view kErrBadMessage = "bad_message";
inline constexpr std::string_view kErrUnknownOp = "unknown_op";
inline constexpr std::string_view kErrHelloRequired = "hello_required";
inline constexpr std::string_view kErrBadVersion = "bad_version";
inline constexpr std::string_view kErrBadRequest = "bad_request";
inline constexpr std::string_view kErrFull = "full";
inline constexpr std::string_view kErrForbidden = "forbidden";

// The wire name of a message: "hello", "put", ...
std::string_view OpName(const Message& m);

// Appends the encoding of m to *out.
void EncodeTo(const Message& m, std::string* out);
std::string Encode(const Message& m);

// Decodes one message. Rejects truncated input, trailing bytes, wrong types,
// and counts or nesting beyond proto/limits.h. Unknown keys are ignored;
// missing optional keys keep the defaults above. An unknown "op" fails with
// kUnsupported (IsUnknownOp() says so). The result borrows from bytes.
Result<Message> Decode(std::string_view bytes);
bool IsUnknownOp(const Status& s);
// Decodes the items array of a put from its raw bytes (Put::raw_items), as
// the journal stores them.
Status DecodePutItems(std::string_view raw, std::vector<NewTask>* items);
// The rid of a message that may not decode as a whole (for error replies):
// that of the first "rid" key, if the map header and every field before it
// read well and its value is a non-negative integer; else 0. What follows
// that field does not matter (docs/PROTOCOL.md section 8).
uint64_t PeekRid(std::string_view bytes);

}  // namespace taskq

#endif  // TASKQ_PROTO_MESSAGE_H_
