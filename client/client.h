// The taskq client API: what BaseManager gives the tutorial, for a C++
// program. A master (or any producer):
//
//   auto client = taskq::Client::Connect("127.0.0.1:5000", "abc");
//   taskq::Queue tasks = (*client)->GetQueue("tasks");
//   taskq::Result<uint64_t> id = tasks.Put("square", taskq::Value::Int(7));
//   taskq::Result<taskq::Item> r = (*client)->GetQueue("results").Get(10s);
//   // r->outcome->value is 49; r.status().code() == Code::kEmpty on timeout
//
// and a worker of its own:
//
//   taskq::Result<taskq::Item> t = tasks.Take(10s);    // leased, not removed
//   auto done = (*client)->Done(*t, taskq::Value::Int(n * n));  // or Fail(*t, "why")
//
// A producer that must not lose an outcome it took (it could crash before
// saving it) takes them leased and acknowledges them once they are safe:
//
//   auto got = (*client)->Get("results", 1000, 10s, /*lease=*/true);
//   // ... write got's outcomes to disk, flush ...
//   auto acked = (*client)->Ack(ids_of(*got));  // only now does the master drop them
//
// Queues are created on first use. Put and Get also take batches (one
// message for many items). Every call returns a Result, to be looked at
// ([[nodiscard]]): kEmpty when a get timed out, kAuthFailed for a wrong
// authkey, kUnavailable when the master does not answer, kShutdown when it
// is shutting down, kForbidden when the key is a worker's or a submitter's
// and its role may not do that.
//
// When the connection drops or the master restarts during a call, the
// client says hello again and, once the master is back, sends again what is
// safe to send twice (Get, Stats, Peek; Report and Ack if the master kept
// its task ids), and the call goes on. A Put, Retry or Purge cut off that
// way may or may not have been done: it fails with kUnavailable, saying so
// (docs/PROTOCOL.md 4.5 says how a put's fate is learned).
//
// Thread: a Client is used by one thread at a time.
#ifndef TASKQ_CLIENT_CLIENT_H_
#define TASKQ_CLIENT_CLIENT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/keys.h"
#include "proto/message.h"
#include "proto/status.h"
#include "proto/value.h"

namespace zmq {
class context_t;
class message_t;
}  // namespace zmq

namespace taskq {

class Connection;
class Queue;
class Session;
struct SessionActions;

class SocketWatch;
struct LocalChannel;

struct ClientOptions {
  std::string name;  // shown in the master's log; default "PROGRAM-PID"
  std::string role = "client";
  // A worker's tasks at once, as the master logs it and sizes its share;
  // 0: one (a program that takes a task at a time).
  uint32_t capacity = 0;
  // Give up if the master does not answer within this; zero waits for ever.
  std::chrono::milliseconds connect_timeout{10000};
  // Told once, with a sentence to show, while the master is not up yet.
  std::function<void(const std::string&)> on_waiting;
  int interrupt_fd = -1;  // readable fd that aborts waits (signals.h)
  // For task_master's own job only (ConnectLocal): waits in place of
  // poll(2), running the server loop meanwhile (client/connection.h, WaitPump).
  std::function<Status(SocketWatch& watch, int timeout_ms)> pump;
  // With pump (ConnectLocal): talk to the master through this channel, in
  // memory, in place of the endpoint (client/local_channel.h).
  LocalChannel* local = nullptr;
};

// A task to put.
struct TaskSpec {
  std::string kind;
  Value arg;
  std::chrono::milliseconds timeout{0};  // its time limit once leased; 0: the master's
};

// What happened to a task.
struct TaskOutcome {
  bool ok = true;
  Value value;        // when ok
  std::string error;  // when !ok
  std::string worker;
  std::chrono::microseconds elapsed{0};
};

// An entry a get handed out: a task, or (from a reply queue) a task with its
// outcome.
struct Item {
  uint64_t id = 0;
  std::string kind;
  Value arg;
  uint32_t attempt = 1;
  std::optional<TaskOutcome> outcome;

  static Item FromEntry(const Entry& e);
};

struct IdRange {
  uint64_t first = 0;
  uint64_t count = 0;
};

class Client {
 public:
  // Connects to "HOST[:PORT]" (port 5000 by default) with keys derived from
  // authkey (about 0.1 s of Argon2id), or from a worker's or submitter's key
  // (proto/keys.h; then options.role must be "worker" for a worker's).
  static Result<std::unique_ptr<Client>> Connect(std::string_view server, std::string_view authkey,
                                                 ClientOptions options = {});
  // Connects over an inproc endpoint of a master in this process, sharing
  // its context (task_master's own jobs use this), or through
  // options.local when that is set.
  static Result<std::unique_ptr<Client>> ConnectLocal(zmq::context_t& ctx,
                                                      const std::string& endpoint,
                                                      ClientOptions options = {});
  ~Client();  // says goodbye; leased tasks not finished go back to their queue

  Queue GetQueue(std::string name);

  // Appends tasks (at most kMaxBatch per call) to queue; their outcomes go
  // to reply_to. The ids are consecutive. A queue at its limit (--max-queue)
  // makes the put wait up to wait for room, then fail with kFull.
  Result<IdRange> Put(const std::string& queue, const std::vector<TaskSpec>& tasks,
                      const std::string& reply_to = "results", std::chrono::milliseconds wait = {});
  // Takes up to max entries, waiting up to timeout for the first one. kEmpty
  // when none came. With lease, tasks stay the master's until Done or Fail,
  // and outcomes (from a reply queue) until Ack; either goes back to its
  // queue if this client goes away (or reconnects) first. Without lease,
  // both are removed once sent.
  Result<std::vector<Item>> Get(const std::string& queue, uint32_t max,
                                std::chrono::milliseconds timeout, bool lease = false,
                                const std::vector<std::string>& kinds = {});
  // Reports the outcome of leased tasks; returns how many were accepted
  // (the others had an outcome already).
  Result<uint64_t> Report(const std::vector<TaskResult>& results);
  Result<uint64_t> Done(const Item& task, const Value& value);
  Result<uint64_t> Fail(const Item& task, std::string_view error, bool retry = true);
  // Removes outcomes this client took with Get(..., lease=true) and has kept
  // safe; returns how many were removed. Ids not leased to this connection
  // (already acked, or given back when it was lost: a later Get hands those
  // out again, so dedupe by id) are skipped, not an error. Sends at most
  // kMaxBatch ids per message; returns once the master has recorded the
  // removal (in its journal, if it has one).
  Result<uint64_t> Ack(const std::vector<uint64_t>& ids);
  // Copies of up to max entries waiting in queue (tasks, or outcomes in a
  // reply queue), lowest id first, ids above after; nothing changes. Empty
  // when there are no more. Walks the queue in the master: for looking, not
  // for taking work.
  Result<std::vector<Item>> Peek(const std::string& queue, uint64_t after = 0, uint32_t max = 100);
  // Runs again the tasks of these failure records (ids of entries in the
  // "failed" queue): each becomes a new task in its old queue, its outcome
  // going to its old reply queue, and the record goes. Returns (record id,
  // new task id) for each one retried; other ids are skipped.
  Result<std::vector<std::pair<uint64_t, uint64_t>>> Retry(const std::vector<uint64_t>& ids);
  // Removes every entry waiting in queue (leased ones stay); returns how many.
  Result<uint64_t> Purge(const std::string& queue);
  // Queue sizes, connected workers and counters. The result borrows from
  // this client: use it before the next call.
  // wait: how long to wait for the answer (kTimeout after it; the client
  // stays usable, a late answer is dropped). queue: a job queue to list even
  // to a submitter's key, which sees only its own (docs/PROTOCOL.md 2.5).
  Result<StatsOk> Stats(std::chrono::milliseconds wait = std::chrono::milliseconds(30000),
                        const std::string& queue = "");

  const std::string& server() const;

 private:
  Client(std::unique_ptr<zmq::context_t> owned, std::unique_ptr<DerivedKeys> keys,
         std::unique_ptr<Connection> conn);
  static Result<std::unique_ptr<Client>> Open(
      zmq::context_t& ctx, std::unique_ptr<zmq::context_t> owned, const std::string& endpoint,
      const std::string& display, std::unique_ptr<DerivedKeys> keys, ClientOptions options);
  // Sends request with a fresh rid and waits up to wait for the reply with
  // that rid (an error reply becomes a Status). When the session is lost
  // (the master restarted, or the connection dropped), the session says
  // whether to send it again after the new welcome (client/session.h) and
  // the wait starts over then.
  Result<Message> Call(Message request, std::chrono::milliseconds wait);
  Result<Message> AwaitReply(uint64_t rid, std::chrono::milliseconds wait);
  // Does what the session said; the status of request rid if it ended.
  Status Perform(const SessionActions& todo, uint64_t rid,
                 std::chrono::steady_clock::time_point* deadline,
                 std::chrono::milliseconds wait);

  std::unique_ptr<zmq::context_t> owned_ctx_;  // destroyed last
  std::unique_ptr<DerivedKeys> keys_;          // the connection points to them
  std::unique_ptr<Connection> conn_;
  std::unique_ptr<Session> session_;
  std::unique_ptr<zmq::message_t> reply_frame_;  // what the last reply borrows from
};

// A named queue on a master, as BaseManager.register gives one.
class Queue {
 public:
  Queue(Client* client, std::string name) : client_(client), name_(std::move(name)) {}
  Result<uint64_t> Put(std::string kind, Value arg);     // returns the task id
  Result<Item> Get(std::chrono::milliseconds timeout);   // kEmpty on timeout
  Result<Item> Take(std::chrono::milliseconds timeout);  // leased: finish with Done or Fail
  Result<uint64_t> Size();                               // entries waiting to be handed out
  const std::string& name() const { return name_; }

 private:
  Client* client_;
  std::string name_;
};

}  // namespace taskq

#endif  // TASKQ_CLIENT_CLIENT_H_
