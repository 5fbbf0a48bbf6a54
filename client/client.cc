#include "client/client.h"

#include <unistd.h>

#include <cerrno>
#include <zmq.hpp>

#include "client/connection.h"
#include "client/endpoint.h"
#include "client/session.h"
#include "proto/limits.h"

namespace taskq {
namespace {

// How long a request may go unanswered before the master counts as gone. A
// get waits this long beyond its own timeout.
constexpr std::chrono::milliseconds kReplySlack{30000};

Status Unexpected(const Message& m, const char* request) {
  return Status::Error(Code::kProtocol, std::string("the master answered ") + request + " with '" +
                                            std::string(OpName(m)) + "'");
}

}  // namespace

Item Item::FromEntry(const Entry& e) {
  Item it;
  it.id = e.id;
  it.kind = std::string(e.kind);
  it.arg = Value::FromTrusted(e.arg);
  it.attempt = e.attempt;
  if (e.has_outcome) {
    const Outcome& o = e.outcome;
    it.outcome = TaskOutcome{o.ok, Value::FromTrusted(o.value), std::string(o.error),
                             std::string(o.worker), std::chrono::microseconds(o.elapsed_us)};
  }
  return it;
}

Client::Client(std::unique_ptr<zmq::context_t> owned, std::unique_ptr<DerivedKeys> keys,
               std::unique_ptr<Connection> conn)
    : owned_ctx_(std::move(owned)),
      keys_(std::move(keys)),
      conn_(std::move(conn)),
      session_(std::make_unique<Session>(conn_->master().instance, conn_->master().epoch)),
      reply_frame_(std::make_unique<zmq::message_t>()) {}

Client::~Client() {
  if (conn_) (void)conn_->Send(Goodbye{});
  conn_.reset();  // before the context it lives in
  reply_frame_.reset();
}

Result<std::unique_ptr<Client>> Client::Open(
    zmq::context_t& ctx, std::unique_ptr<zmq::context_t> owned, const std::string& endpoint,
    const std::string& display, std::unique_ptr<DerivedKeys> keys, ClientOptions options) {
  ConnectOptions co;
  co.endpoint = endpoint;
  co.display = display;
  co.keys = keys.get();
  co.peer.role = options.role;
  // The program's own name (example_worker-4242) says more in the master's
  // log than "client".
  co.peer.name = options.name.empty()
                     ? std::string(program_invocation_short_name) + "-" + std::to_string(getpid())
                     : options.name;
  co.peer.capacity = options.capacity > 0 ? options.capacity : (options.role == "worker" ? 1 : 0);
  co.connect_timeout = options.connect_timeout;
  co.on_waiting = std::move(options.on_waiting);
  co.interrupt_fd = options.interrupt_fd;
  co.pump = options.pump;
  co.local = options.local;
  Result<std::unique_ptr<Connection>> conn = Connection::Open(ctx, std::move(co));
  if (!conn.ok()) return conn.status();
  return std::unique_ptr<Client>(new Client(std::move(owned), std::move(keys), std::move(*conn)));
}

Result<std::unique_ptr<Client>> Client::Connect(std::string_view server, std::string_view authkey,
                                                ClientOptions options) {
  Result<ServerAddress> addr = ParseServerAddress(server, kDefaultPort);
  if (!addr.ok()) return addr.status();
  Result<DerivedKeys> keys = DeriveKeys(authkey);
  if (!keys.ok()) return keys.status();
  auto ctx = std::make_unique<zmq::context_t>(1);
  zmq::context_t& ref = *ctx;
  return Open(ref, std::move(ctx), addr->TcpEndpoint(), addr->Display(),
              std::make_unique<DerivedKeys>(std::move(*keys)), std::move(options));
}

Result<std::unique_ptr<Client>> Client::ConnectLocal(zmq::context_t& ctx,
                                                     const std::string& endpoint,
                                                     ClientOptions options) {
  return Open(ctx, nullptr, endpoint, "this process", nullptr, std::move(options));
}

const std::string& Client::server() const { return conn_->display(); }

Result<Message> Client::Call(Message request, std::chrono::milliseconds wait) {
  const uint64_t rid = session_->Start(&request);
  if (session_->welcomed()) {  // else it goes with the welcome (Perform)
    if (Status s = conn_->SendEncoded(session_->Encoded(rid)); !s.ok()) {
      session_->Abandon(rid);
      return s;
    }
  }
  Result<Message> m = AwaitReply(rid, wait);
  if (!m.ok()) return m;
  const auto* err = std::get_if<ErrorMsg>(&*m);
  if (!err) return m;
  const Code code = err->code == kErrFull        ? Code::kFull
                    : err->code == kErrForbidden ? Code::kForbidden
                    : err->code == kErrBadRequest || err->code == kErrBadMessage
                        ? Code::kInvalid
                        : Code::kProtocol;
  return Status::Error(code, "the master refused the request: " + std::string(err->message));
}

Result<Message> Client::AwaitReply(uint64_t rid, std::chrono::milliseconds wait) {
  TimePoint deadline = Clock::now() + wait;
  std::vector<int> fds;
  if (conn_->options().interrupt_fd >= 0) fds.push_back(conn_->options().interrupt_fd);
  Status s;
  while (s.ok()) {
    SessionActions todo;
    Result<Message> m = conn_->TryReceive(reply_frame_.get());
    if (m.ok()) {
      const Session::Received got = session_->OnMessage(*m, Clock::now(), &todo);
      if (got.kind == Session::Kind::kReply && got.rid == rid) return m;
      if (got.kind == Session::Kind::kWelcome) conn_->NoteWelcome(std::get<Welcome>(*m));
      if (std::holds_alternative<Shutdown>(*m))
        s = Status::Error(Code::kShutdown,
                          "the master at " + conn_->display() + " is shutting down");
    } else if (m.status().code() != Code::kTimeout) {
      s = m.status();
    } else if (Clock::now() >= deadline) {
      s = Status::Error(Code::kUnavailable,
                        "the master at " + conn_->display() + " did not answer");
    } else {
      const TimePoint until = std::min(deadline, session_->NextTick());
      Result<uint32_t> ready = conn_->Wait(PollTimeout(until), fds);
      if (!ready.ok()) {
        s = ready.status();
      } else if (*ready & Connection::FdReady(0)) {
        s = Status::Error(Code::kInterrupted, "interrupted");
      } else {
        if (*ready & Connection::kDropped) session_->OnDisconnect(Clock::now(), &todo);
        session_->Tick(Clock::now(), &todo);
      }
    }
    if (s.ok()) s = Perform(todo, rid, &deadline, wait);
  }
  session_->Abandon(rid);
  return s;
}

Status Client::Perform(const SessionActions& todo, uint64_t rid, TimePoint* deadline,
                       std::chrono::milliseconds wait) {
  if (todo.hello) TASKQ_TRY(conn_->SendHello());
  for (uint64_t again : todo.resend) {
    TASKQ_TRY(conn_->SendEncoded(session_->Encoded(again)));
    // A master that came back: the request's time starts over.
    if (again == rid) *deadline = Clock::now() + wait;
  }
  for (const auto& [ended, why] : todo.ended)
    if (ended == rid)
      return Status::Error(why.code(), why.message() + " (the master at " + conn_->display() + ")");
  return Status::Ok();
}

Result<IdRange> Client::Put(const std::string& queue, const std::vector<TaskSpec>& tasks,
                            const std::string& reply_to, std::chrono::milliseconds wait) {
  if (tasks.size() > kMaxBatch)
    return Status::Error(Code::kInvalid,
                         "a put carries at most " + std::to_string(kMaxBatch) + " tasks");
  taskq::Put req;
  req.queue = queue;
  req.reply_to = reply_to;
  req.timeout_ms = static_cast<uint32_t>(std::clamp<int64_t>(wait.count(), 0, UINT32_MAX));
  req.items.reserve(tasks.size());
  for (const TaskSpec& t : tasks)
    req.items.push_back(NewTask{t.kind, t.arg.packed(), static_cast<uint32_t>(t.timeout.count())});
  Result<Message> m = Call(std::move(req), wait + kReplySlack);
  if (!m.ok()) return m.status();
  const auto* ok = std::get_if<PutOk>(&*m);
  if (!ok) return Unexpected(*m, "put");
  return IdRange{ok->first_id, ok->count};
}

Result<std::vector<Item>> Client::Get(const std::string& queue, uint32_t max,
                                      std::chrono::milliseconds timeout, bool lease,
                                      const std::vector<std::string>& kinds) {
  taskq::Get req;
  req.queue = queue;
  req.max = max;
  req.timeout_ms = static_cast<uint32_t>(std::clamp<int64_t>(timeout.count(), 0, UINT32_MAX));
  req.lease = lease;
  for (const std::string& k : kinds) req.kinds.push_back(k);
  Result<Message> m = Call(std::move(req), timeout + kReplySlack);
  if (!m.ok()) return m.status();
  const auto* items = std::get_if<Items>(&*m);
  if (!items) return Unexpected(*m, "get");
  if (items->items.empty())
    return Status::Error(Code::kEmpty, "queue '" + queue + "' stayed empty for " +
                                           std::to_string(timeout.count()) + " ms");
  std::vector<Item> out;
  out.reserve(items->items.size());
  for (const Entry& e : items->items) out.push_back(Item::FromEntry(e));
  return out;
}

Result<uint64_t> Client::Report(const std::vector<TaskResult>& results) {
  ResultMsg req;
  req.results = results;
  Result<Message> m = Call(std::move(req), kReplySlack);
  if (!m.ok()) return m.status();
  const auto* ok = std::get_if<ResultOk>(&*m);
  if (!ok) return Unexpected(*m, "result");
  return ok->accepted;
}

Result<uint64_t> Client::Done(const Item& task, const Value& value) {
  TaskResult r;
  r.id = task.id;
  r.value = value.packed();
  return Report({r});
}

Result<uint64_t> Client::Fail(const Item& task, std::string_view error, bool retry) {
  TaskResult r;
  r.id = task.id;
  r.ok = false;
  r.error = error.substr(0, kMaxErrorBytes);
  r.retry = retry;
  return Report({r});
}

Result<uint64_t> Client::Ack(const std::vector<uint64_t>& ids) {
  uint64_t acked = 0;
  for (std::size_t i = 0; i < ids.size(); i += kMaxBatch) {
    taskq::Ack req;
    req.ids.assign(ids.begin() + i, ids.begin() + std::min(ids.size(), i + kMaxBatch));
    Result<Message> m = Call(std::move(req), kReplySlack);
    if (!m.ok()) return m.status();
    const auto* ok = std::get_if<AckOk>(&*m);
    if (!ok) return Unexpected(*m, "ack");
    acked += ok->acked;
  }
  return acked;
}

Result<std::vector<Item>> Client::Peek(const std::string& queue, uint64_t after, uint32_t max) {
  taskq::Peek req;
  req.queue = queue;
  req.after = after;
  req.max = max;
  Result<Message> m = Call(std::move(req), kReplySlack);
  if (!m.ok()) return m.status();
  const auto* items = std::get_if<Items>(&*m);
  if (!items) return Unexpected(*m, "peek");
  std::vector<Item> out;
  out.reserve(items->items.size());
  for (const Entry& e : items->items) out.push_back(Item::FromEntry(e));
  return out;
}

Result<std::vector<std::pair<uint64_t, uint64_t>>> Client::Retry(const std::vector<uint64_t>& ids) {
  std::vector<std::pair<uint64_t, uint64_t>> retried;
  for (std::size_t i = 0; i < ids.size(); i += kMaxBatch) {
    taskq::Retry req;
    req.ids.assign(ids.begin() + i, ids.begin() + std::min(ids.size(), i + kMaxBatch));
    Result<Message> m = Call(std::move(req), kReplySlack);
    if (!m.ok()) return m.status();
    const auto* ok = std::get_if<RetryOk>(&*m);
    if (!ok) return Unexpected(*m, "retry");
    retried.insert(retried.end(), ok->retried.begin(), ok->retried.end());
  }
  return retried;
}

Result<uint64_t> Client::Purge(const std::string& queue) {
  taskq::Purge req;
  req.queue = queue;
  Result<Message> m = Call(std::move(req), kReplySlack);
  if (!m.ok()) return m.status();
  const auto* ok = std::get_if<PurgeOk>(&*m);
  if (!ok) return Unexpected(*m, "purge");
  return ok->removed;
}

Result<StatsOk> Client::Stats(std::chrono::milliseconds wait, const std::string& queue) {
  Result<Message> m = Call(taskq::Stats{0, queue}, wait);
  if (!m.ok()) return m.status();
  auto* st = std::get_if<StatsOk>(&*m);
  if (!st) return Unexpected(*m, "stats");
  return std::move(*st);
}

Queue Client::GetQueue(std::string name) { return Queue(this, std::move(name)); }

Result<uint64_t> Queue::Put(std::string kind, Value arg) {
  Result<IdRange> r = client_->Put(name_, {TaskSpec{std::move(kind), std::move(arg), {}}});
  if (!r.ok()) return r.status();
  return r->first;
}

Result<Item> Queue::Get(std::chrono::milliseconds timeout) {
  Result<std::vector<Item>> r = client_->Get(name_, 1, timeout);
  if (!r.ok()) return r.status();
  return std::move(r->front());
}

Result<Item> Queue::Take(std::chrono::milliseconds timeout) {
  Result<std::vector<Item>> r = client_->Get(name_, 1, timeout, /*lease=*/true);
  if (!r.ok()) return r.status();
  return std::move(r->front());
}

Result<uint64_t> Queue::Size() {
  Result<StatsOk> st = client_->Stats(std::chrono::milliseconds(30000), name_);
  if (!st.ok()) return st.status();
  for (const QueueStats& q : st->queues)
    if (q.name == name_) return q.ready;
  return uint64_t{0};
}

}  // namespace taskq
