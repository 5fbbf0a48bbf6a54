#include "proto/message.h"

#include <algorithm>

#include "proto/envelope.h"
#include "proto/limits.h"
#include "proto/msgpack_reader.h"
#include "proto/msgpack_writer.h"

namespace taskq {
namespace {

// --- encoding ---------------------------------------------------------------

void RawOrNil(MsgpackWriter& w, std::string_view raw) {
  if (raw.empty())
    w.Nil();
  else
    w.Raw(raw);
}

void EncodeOutcome(MsgpackWriter& w, const Outcome& o) {
  w.Array(4).Bool(o.ok);
  if (o.ok)
    RawOrNil(w, o.value);
  else
    w.Str(o.error);
  w.Str(o.worker).Uint(o.elapsed_us);
}

void EncodeEntry(MsgpackWriter& w, const Entry& e) {
  w.Array(e.has_outcome ? 5 : 4).Uint(e.id).Str(e.kind);
  RawOrNil(w, e.arg);
  w.Uint(e.attempt);
  if (e.has_outcome) EncodeOutcome(w, e.outcome);
}

// [id, ok, value_or_error, elapsed_us, retry?, worker_fault?]: retry is
// written for failures, worker_fault only when set (old masters stop at 5).
void EncodeResult(MsgpackWriter& w, const TaskResult& r) {
  bool fault = !r.ok && r.worker_fault;
  w.Array(r.ok ? 4 : fault ? 6 : 5).Uint(r.id).Bool(r.ok);
  if (r.ok)
    RawOrNil(w, r.value);
  else
    w.Str(r.error);
  w.Uint(r.elapsed_us);
  if (!r.ok) w.Bool(r.retry);
  if (fault) w.Bool(true);
}

struct Encoder {
  MsgpackWriter& w;

  MsgpackWriter& Op(uint32_t fields, std::string_view op) {
    return w.Map(fields + 1).Key("op").Str(op);
  }

  void operator()(const Hello& m) {
    Op(8, "hello")
        .Key("v")
        .Uint(m.version)
        .Key("role")
        .Str(m.role)
        .Key("name")
        .Str(m.name)
        .Key("capacity")
        .Uint(m.capacity)
        .Key("session")
        .Uint(m.session)
        .Key("heartbeat_ms")
        .Uint(m.heartbeat_ms)
        .Key("kinds")
        .Array(static_cast<uint32_t>(m.kinds.size()));
    for (std::string_view k : m.kinds) w.Str(k);
    w.Key("holding");
    Ids(m.holding);
  }
  void operator()(const Welcome& m) {
    Op(6, "welcome")
        .Key("v")
        .Uint(m.version)
        .Key("master")
        .Str(m.master)
        .Key("instance")
        .Uint(m.instance)
        .Key("epoch")
        .Uint(m.epoch)
        .Key("heartbeat_ms")
        .Uint(m.heartbeat_ms)
        .Key("max_batch")
        .Uint(m.max_batch);
  }
  void operator()(const Put& m) {
    Op(5, "put")
        .Key("rid")
        .Uint(m.rid)
        .Key("queue")
        .Str(m.queue)
        .Key("reply_to")
        .Str(m.reply_to)
        .Key("timeout_ms")
        .Uint(m.timeout_ms)
        .Key("items")
        .Array(static_cast<uint32_t>(m.items.size()));
    for (const NewTask& t : m.items) {
      w.Array(t.timeout_ms ? 3 : 2).Str(t.kind);
      RawOrNil(w, t.arg);
      if (t.timeout_ms) w.Map(1).Key("timeout_ms").Uint(t.timeout_ms);
    }
  }
  void operator()(const PutOk& m) {
    Op(3, "put_ok")
        .Key("rid")
        .Uint(m.rid)
        .Key("first_id")
        .Uint(m.first_id)
        .Key("count")
        .Uint(m.count);
  }
  void operator()(const Get& m) {
    Op(6, "get")
        .Key("rid")
        .Uint(m.rid)
        .Key("queue")
        .Str(m.queue)
        .Key("max")
        .Uint(m.max)
        .Key("timeout_ms")
        .Uint(m.timeout_ms)
        .Key("lease")
        .Bool(m.lease)
        .Key("kinds")
        .Array(static_cast<uint32_t>(m.kinds.size()));
    for (std::string_view k : m.kinds) w.Str(k);
  }
  void operator()(const Items& m) {
    Op(3, "items")
        .Key("rid")
        .Uint(m.rid)
        .Key("queue")
        .Str(m.queue)
        .Key("items")
        .Array(static_cast<uint32_t>(m.items.size()));
    for (const Entry& e : m.items) EncodeEntry(w, e);
  }
  void operator()(const ResultMsg& m) {
    Op(m.lazy_ack ? 3 : 2, "result").Key("rid").Uint(m.rid);
    if (m.lazy_ack) w.Key("lazy_ack").Bool(true);
    w.Key("results").Array(static_cast<uint32_t>(m.results.size()));
    for (const TaskResult& r : m.results) EncodeResult(w, r);
  }
  void operator()(const ResultOk& m) {
    Op(3, "result_ok")
        .Key("rid")
        .Uint(m.rid)
        .Key("accepted")
        .Uint(m.accepted)
        .Key("duplicates")
        .Uint(m.duplicates);
  }
  void operator()(const Stats& m) {
    Op(m.queue.empty() ? 1 : 2, "stats").Key("rid").Uint(m.rid);
    if (!m.queue.empty()) w.Key("queue").Str(m.queue);
  }
  void operator()(const StatsOk& m) {
    Op(4, "stats_ok")
        .Key("rid")
        .Uint(m.rid)
        .Key("queues")
        .Array(static_cast<uint32_t>(m.queues.size()));
    for (const QueueStats& q : m.queues)
      w.Map(5)
          .Key("name")
          .Str(q.name)
          .Key("ready")
          .Uint(q.ready)
          .Key("leased")
          .Uint(q.leased)
          .Key("failed")
          .Uint(q.failed)
          .Key("owed")
          .Uint(q.owed);
    w.Key("workers").Array(static_cast<uint32_t>(m.workers.size()));
    for (const WorkerStats& s : m.workers)
      w.Map(6)
          .Key("name")
          .Str(s.name)
          .Key("in_flight")
          .Uint(s.in_flight)
          .Key("capacity")
          .Uint(s.capacity)
          .Key("done")
          .Uint(s.done)
          .Key("idle_ms")
          .Uint(s.idle_ms)
          .Key("benched_ms")
          .Uint(s.benched_ms);
    w.Key("counters").Map(static_cast<uint32_t>(m.counters.size()));
    for (const auto& [name, value] : m.counters) w.Key(name).Uint(value);
  }
  void operator()(const Ping&) { Op(0, "ping"); }
  void operator()(const ErrorMsg& m) {
    Op(3, "error").Key("rid").Uint(m.rid).Key("code").Str(m.code).Key("message").Str(m.message);
  }
  void operator()(const Shutdown& m) { Op(1, "shutdown").Key("reason").Str(m.reason); }
  void operator()(const Goodbye& m) {
    Op(1, "goodbye").Key("release");
    Ids(m.release);
  }
  void operator()(const Release& m) {
    Op(1, "release").Key("ids");
    Ids(m.ids);
  }
  void operator()(const Cancel& m) { Op(1, "cancel").Key("rid").Uint(m.rid); }
  void operator()(const Ack& m) {
    Op(2, "ack").Key("rid").Uint(m.rid).Key("ids");
    Ids(m.ids);
  }
  void operator()(const AckOk& m) {
    Op(3, "ack_ok")
        .Key("rid")
        .Uint(m.rid)
        .Key("acked")
        .Uint(m.acked)
        .Key("unknown")
        .Uint(m.unknown);
  }
  void operator()(const Peek& m) {
    Op(4, "peek")
        .Key("rid")
        .Uint(m.rid)
        .Key("queue")
        .Str(m.queue)
        .Key("after")
        .Uint(m.after)
        .Key("max")
        .Uint(m.max);
  }
  void operator()(const Retry& m) {
    Op(2, "retry").Key("rid").Uint(m.rid).Key("ids");
    Ids(m.ids);
  }
  void operator()(const RetryOk& m) {
    Op(3, "retry_ok")
        .Key("rid")
        .Uint(m.rid)
        .Key("retried")
        .Array(static_cast<uint32_t>(m.retried.size()));
    for (const auto& [record, task] : m.retried) w.Array(2).Uint(record).Uint(task);
    w.Key("skipped").Uint(m.skipped);
  }
  void operator()(const Purge& m) {
    Op(2, "purge").Key("rid").Uint(m.rid).Key("queue").Str(m.queue);
  }
  void operator()(const PurgeOk& m) {
    Op(2, "purge_ok").Key("rid").Uint(m.rid).Key("removed").Uint(m.removed);
  }
  void Ids(const std::vector<uint64_t>& ids) {
    w.Array(static_cast<uint32_t>(ids.size()));
    for (uint64_t id : ids) w.Uint(id);
  }
};

// --- decoding ---------------------------------------------------------------

// Task options: nil or a map; unknown options are ignored.
Status DecodeTaskOptions(std::string_view raw, NewTask* t) {
  MsgpackReader m(raw);
  if (m.ReadNil()) return Status::Ok();
  uint32_t n;
  if (!m.ReadMapHeader(&n)) return Bad("task options must be a map");
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view key;
    if (!m.ReadStr(&key)) return Bad("task option names must be strings");
    uint64_t v;
    if (key == "timeout_ms") {
      if (!m.ReadUint(&v) || v > UINT32_MAX)
        return Bad("task option 'timeout_ms' must be an integer");
      t->timeout_ms = static_cast<uint32_t>(v);
    } else if (!m.Skip()) {
      return Bad("task options are not valid msgpack");
    }
  }
  return Status::Ok();
}

Status DecodeNewTask(MsgpackReader& r, NewTask* t) {
  ItemReader it(r, "put item");
  TASKQ_TRY(it.Open(2));
  TASKQ_TRY(it.Str(&t->kind, kMaxNameBytes));
  if (t->kind.empty()) return Bad("a task's kind must not be empty");
  TASKQ_TRY(it.Payload(&t->arg));
  if (it.Has(2)) {
    std::string_view options;
    TASKQ_TRY(it.Any(&options));
    TASKQ_TRY(DecodeTaskOptions(options, t));
  }
  return it.Close();
}

Status DecodeOutcome(MsgpackReader& r, Outcome* o) {
  ItemReader it(r, "outcome");
  TASKQ_TRY(it.Open(4));
  TASKQ_TRY(it.Bool(&o->ok));
  if (o->ok) {
    TASKQ_TRY(it.Payload(&o->value));
  } else {
    TASKQ_TRY(it.Str(&o->error, kMaxErrorBytes));
  }
  TASKQ_TRY(it.Str(&o->worker, kMaxNameBytes));
  TASKQ_TRY(it.Uint(&o->elapsed_us));
  return it.Close();
}

Status DecodeEntry(MsgpackReader& r, Entry* e) {
  ItemReader it(r, "entry");
  TASKQ_TRY(it.Open(4));
  TASKQ_TRY(it.Uint(&e->id));
  TASKQ_TRY(it.Str(&e->kind, kMaxNameBytes));
  TASKQ_TRY(it.Payload(&e->arg));
  uint64_t attempt = 1;
  TASKQ_TRY(it.Uint(&attempt));
  e->attempt = static_cast<uint32_t>(std::min<uint64_t>(attempt, UINT32_MAX));
  if (it.Has(4) && r.Peek() != MsgType::kNil) {
    std::string_view raw;
    TASKQ_TRY(it.Any(&raw));
    MsgpackReader sub(raw);
    e->has_outcome = true;
    TASKQ_TRY(DecodeOutcome(sub, &e->outcome));
  }
  return it.Close();
}

Status DecodeResult(MsgpackReader& r, TaskResult* t) {
  ItemReader it(r, "result");
  TASKQ_TRY(it.Open(4));
  TASKQ_TRY(it.Uint(&t->id));
  TASKQ_TRY(it.Bool(&t->ok));
  if (t->ok) {
    TASKQ_TRY(it.Payload(&t->value));
  } else {
    TASKQ_TRY(it.Str(&t->error, kMaxErrorBytes));
  }
  TASKQ_TRY(it.Uint(&t->elapsed_us));
  if (it.Has(4)) TASKQ_TRY(it.Bool(&t->retry));
  if (it.Has(5)) TASKQ_TRY(it.Bool(&t->worker_fault));
  return it.Close();
}

// Decodes the array under key into *out, one element at a time with decode.
template <typename T, typename Fn>
Status DecodeBatch(const Envelope& env, std::string_view key, std::vector<T>* out, Fn decode) {
  MsgpackReader r{std::string_view()};
  uint32_t n;
  TASKQ_TRY(env.Array(key, &r, &n, kMaxBatch, true));
  out->resize(n);
  for (uint32_t i = 0; i < n; ++i) TASKQ_TRY(decode(r, &(*out)[i]));
  return env.Consumed(key, r);  // each element was read in full, every byte checked
}

Status DecodeIds(const Envelope& f, std::string_view key, std::vector<uint64_t>* ids);

// The optional "kinds" field of a hello or a get: at most 256 names.
Status DecodeKinds(const Envelope& f, std::vector<std::string_view>* kinds) {
  MsgpackReader r{std::string_view()};
  uint32_t n;
  TASKQ_TRY(f.Array("kinds", &r, &n, 256, false));
  kinds->resize(n);
  for (uint32_t i = 0; i < n; ++i)
    if (!r.ReadStr(&(*kinds)[i]) || (*kinds)[i].size() > kMaxNameBytes)
      return Bad("field 'kinds' must be an array of short strings");
  return Status::Ok();
}

Status DecodeBody(const Envelope& f, Hello* m) {
  TASKQ_TRY(f.Uint32("v", &m->version, true));
  TASKQ_TRY(f.Str("role", &m->role));
  TASKQ_TRY(f.Str("name", &m->name));
  TASKQ_TRY(f.Uint32("capacity", &m->capacity));
  TASKQ_TRY(f.Uint("session", &m->session));
  TASKQ_TRY(f.Uint32("heartbeat_ms", &m->heartbeat_ms));
  TASKQ_TRY(DecodeKinds(f, &m->kinds));
  return DecodeIds(f, "holding", &m->holding);
}
Status DecodeBody(const Envelope& f, Welcome* m) {
  TASKQ_TRY(f.Uint32("v", &m->version, true));
  TASKQ_TRY(f.Str("master", &m->master));
  TASKQ_TRY(f.Uint("instance", &m->instance));
  TASKQ_TRY(f.Uint("epoch", &m->epoch));
  TASKQ_TRY(f.Uint32("heartbeat_ms", &m->heartbeat_ms));
  return f.Uint32("max_batch", &m->max_batch);
}
Status DecodeBody(const Envelope& f, Put* m) {
  TASKQ_TRY(f.Uint("rid", &m->rid));
  TASKQ_TRY(f.Str("queue", &m->queue, true));
  TASKQ_TRY(f.Str("reply_to", &m->reply_to));
  TASKQ_TRY(f.Uint32("timeout_ms", &m->timeout_ms));
  m->raw_items = f.Raw("items");
  return DecodeBatch(f, "items", &m->items, DecodeNewTask);
}
Status DecodeBody(const Envelope& f, PutOk* m) {
  TASKQ_TRY(f.Uint("rid", &m->rid));
  TASKQ_TRY(f.Uint("first_id", &m->first_id, true));
  return f.Uint("count", &m->count, true);
}
Status DecodeBody(const Envelope& f, Get* m) {
  TASKQ_TRY(f.Uint("rid", &m->rid));
  TASKQ_TRY(f.Str("queue", &m->queue, true));
  TASKQ_TRY(f.Uint32("max", &m->max));
  TASKQ_TRY(f.Uint32("timeout_ms", &m->timeout_ms));
  TASKQ_TRY(f.Bool("lease", &m->lease));
  return DecodeKinds(f, &m->kinds);
}
Status DecodeBody(const Envelope& f, Items* m) {
  TASKQ_TRY(f.Uint("rid", &m->rid));
  TASKQ_TRY(f.Str("queue", &m->queue));
  return DecodeBatch(f, "items", &m->items, DecodeEntry);
}
Status DecodeBody(const Envelope& f, ResultMsg* m) {
  TASKQ_TRY(f.Uint("rid", &m->rid));
  TASKQ_TRY(f.Bool("lazy_ack", &m->lazy_ack));
  return DecodeBatch(f, "results", &m->results, DecodeResult);
}
Status DecodeBody(const Envelope& f, ResultOk* m) {
  TASKQ_TRY(f.Uint("rid", &m->rid));
  TASKQ_TRY(f.Uint("accepted", &m->accepted));
  return f.Uint("duplicates", &m->duplicates);
}
Status DecodeBody(const Envelope& f, Stats* m) {
  TASKQ_TRY(f.Uint("rid", &m->rid));
  return f.Str("queue", &m->queue);
}

// Stats maps are small and read by people: decode them key by key.
template <typename T, typename Fn>
Status DecodeStatsArray(const Envelope& f, std::string_view key, std::vector<T>* out, Fn field) {
  MsgpackReader r{std::string_view()};
  uint32_t n;
  TASKQ_TRY(f.Array(key, &r, &n, kMaxContainer, false));
  out->resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t fields;
    if (!r.ReadMapHeader(&fields))
      return Bad("each element of '" + std::string(key) + "' must be a map");
    for (uint32_t k = 0; k < fields; ++k) {
      std::string_view name;
      if (!r.ReadStr(&name)) return Bad("keys in '" + std::string(key) + "' must be strings");
      if (!field(r, name, &(*out)[i]) && !r.Skip())
        return Bad("'" + std::string(key) + "' is not valid msgpack");
    }
  }
  return Status::Ok();
}

// Reads the value of one known stats field into the matching member; false
// (nothing consumed) for fields this decoder does not know.
bool StatsUint(MsgpackReader& r, std::string_view name,
               std::initializer_list<std::pair<std::string_view, uint64_t*>> known) {
  for (const auto& [k, out] : known)
    if (k == name) return r.ReadUint(out);
  return false;
}

Status DecodeBody(const Envelope& f, StatsOk* m) {
  TASKQ_TRY(f.Uint("rid", &m->rid));
  TASKQ_TRY(DecodeStatsArray(f, "queues", &m->queues,
                             [](MsgpackReader& r, std::string_view k, QueueStats* q) {
                               if (k == "name") return r.ReadStr(&q->name);
                               return StatsUint(r, k,
                                                {{"ready", &q->ready},
                                                 {"leased", &q->leased},
                                                 {"failed", &q->failed},
                                                 {"owed", &q->owed}});
                             }));
  TASKQ_TRY(DecodeStatsArray(f, "workers", &m->workers,
                             [](MsgpackReader& r, std::string_view k, WorkerStats* w) {
                               if (k == "name") return r.ReadStr(&w->name);
                               return StatsUint(r, k,
                                                {{"in_flight", &w->in_flight},
                                                 {"capacity", &w->capacity},
                                                 {"done", &w->done},
                                                 {"idle_ms", &w->idle_ms},
                                                 {"benched_ms", &w->benched_ms}});
                             }));
  MsgpackReader r{std::string_view()};
  uint32_t n;
  TASKQ_TRY(f.Map("counters", &r, &n));
  m->counters.resize(n);
  for (uint32_t i = 0; i < n; ++i)
    if (!r.ReadStr(&m->counters[i].first) || !r.ReadUint(&m->counters[i].second))
      return Bad("field 'counters' must map names to non-negative integers");
  return Status::Ok();
}
Status DecodeBody(const Envelope&, Ping*) { return Status::Ok(); }
Status DecodeBody(const Envelope& f, ErrorMsg* m) {
  TASKQ_TRY(f.Uint("rid", &m->rid));
  TASKQ_TRY(f.Str("code", &m->code, true));
  return f.Str("message", &m->message, false, kMaxErrorBytes);
}
Status DecodeBody(const Envelope& f, Shutdown* m) {
  return f.Str("reason", &m->reason, false, kMaxErrorBytes);
}
// An optional array of task ids.
Status DecodeIds(const Envelope& f, std::string_view key, std::vector<uint64_t>* ids) {
  MsgpackReader r;
  uint32_t n;
  TASKQ_TRY(f.Array(key, &r, &n, kMaxBatch, false));
  ids->resize(n);
  for (uint32_t i = 0; i < n; ++i)
    if (!r.ReadUint(&(*ids)[i]))
      return Bad("field '" + std::string(key) + "' must be an array of task ids");
  return Status::Ok();
}
Status DecodeBody(const Envelope& f, Goodbye* m) { return DecodeIds(f, "release", &m->release); }
Status DecodeBody(const Envelope& f, Release* m) { return DecodeIds(f, "ids", &m->ids); }
Status DecodeBody(const Envelope& f, Cancel* m) { return f.Uint("rid", &m->rid, true); }
Status DecodeBody(const Envelope& f, Ack* m) {
  TASKQ_TRY(f.Uint("rid", &m->rid));
  return DecodeIds(f, "ids", &m->ids);
}
Status DecodeBody(const Envelope& f, AckOk* m) {
  TASKQ_TRY(f.Uint("rid", &m->rid));
  TASKQ_TRY(f.Uint("acked", &m->acked));
  return f.Uint("unknown", &m->unknown);
}

Status DecodeBody(const Envelope& f, Peek* m) {
  TASKQ_TRY(f.Uint("rid", &m->rid));
  TASKQ_TRY(f.Str("queue", &m->queue, true));
  TASKQ_TRY(f.Uint("after", &m->after));
  return f.Uint32("max", &m->max);
}
Status DecodeBody(const Envelope& f, Retry* m) {
  TASKQ_TRY(f.Uint("rid", &m->rid));
  return DecodeIds(f, "ids", &m->ids);
}
Status DecodeBody(const Envelope& f, RetryOk* m) {
  TASKQ_TRY(f.Uint("rid", &m->rid));
  MsgpackReader r;
  uint32_t n;
  TASKQ_TRY(f.Array("retried", &r, &n, kMaxBatch, false));
  m->retried.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t two;
    if (!r.ReadArrayHeader(&two) || two != 2 || !r.ReadUint(&m->retried[i].first) ||
        !r.ReadUint(&m->retried[i].second))
      return Bad("field 'retried' must be an array of [record id, task id] pairs");
  }
  return f.Uint("skipped", &m->skipped);
}
Status DecodeBody(const Envelope& f, Purge* m) {
  TASKQ_TRY(f.Uint("rid", &m->rid));
  return f.Str("queue", &m->queue, true);
}
Status DecodeBody(const Envelope& f, PurgeOk* m) {
  TASKQ_TRY(f.Uint("rid", &m->rid));
  return f.Uint("removed", &m->removed);
}

template <typename T>
Result<Message> DecodeAs(const Envelope& f) {
  T m;
  Status s = DecodeBody(f, &m);
  if (!s.ok()) return s;
  return Message(std::move(m));
}

struct OpEntry {
  std::string_view name;
  Result<Message> (*decode)(const Envelope&);
};

// In Message's alternative order, so OpName can index it.
constexpr OpEntry kOps[] = {
    {"hello", DecodeAs<Hello>},       {"welcome", DecodeAs<Welcome>},
    {"put", DecodeAs<Put>},           {"put_ok", DecodeAs<PutOk>},
    {"get", DecodeAs<Get>},           {"items", DecodeAs<Items>},
    {"result", DecodeAs<ResultMsg>},  {"result_ok", DecodeAs<ResultOk>},
    {"stats", DecodeAs<Stats>},       {"stats_ok", DecodeAs<StatsOk>},
    {"ping", DecodeAs<Ping>},         {"error", DecodeAs<ErrorMsg>},
    {"shutdown", DecodeAs<Shutdown>}, {"goodbye", DecodeAs<Goodbye>},
    {"release", DecodeAs<Release>},   {"cancel", DecodeAs<Cancel>},
    {"ack", DecodeAs<Ack>},           {"ack_ok", DecodeAs<AckOk>},
    {"peek", DecodeAs<Peek>},         {"retry", DecodeAs<Retry>},
    {"retry_ok", DecodeAs<RetryOk>},  {"purge", DecodeAs<Purge>},
    {"purge_ok", DecodeAs<PurgeOk>},
};
static_assert(std::size(kOps) == std::variant_size_v<Message>);

}  // namespace

std::string_view OpName(const Message& m) { return kOps[m.index()].name; }

void EncodeTo(const Message& m, std::string* out) {
  MsgpackWriter w(out);
  std::visit(Encoder{w}, m);
}

std::string Encode(const Message& m) {
  std::string out;
  EncodeTo(m, &out);
  return out;
}

Result<Message> Decode(std::string_view bytes) {
  if (bytes.size() > kMaxMessageBytes) return Bad("the message is larger than the limit");
  Envelope env;
  TASKQ_TRY(env.Parse(bytes));
  std::string_view op;
  TASKQ_TRY(env.Str("op", &op, true));
  for (const OpEntry& e : kOps) {
    if (e.name != op) continue;
    Result<Message> m = e.decode(env);
    if (!m.ok()) return m;
    TASKQ_TRY(env.Finish());
    return m;
  }
  return Status::Error(Code::kUnsupported, "unknown op '" + Envelope::Clip(op) + "'");
}

Status DecodePutItems(std::string_view raw, std::vector<NewTask>* items) {
  MsgpackReader r(raw);
  uint32_t n;
  if (!r.ReadArrayHeader(&n, kMaxBatch)) return Bad("put items must be an array of at most 65536");
  items->resize(n);
  for (uint32_t i = 0; i < n; ++i) TASKQ_TRY(DecodeNewTask(r, &(*items)[i]));
  if (!r.at_end()) return Bad("put items have trailing bytes");
  return Status::Ok();
}

// Reads only as far as the rid: a peer learns which request was refused
// even when the damage is further on (in a task's argument, after the map).
uint64_t PeekRid(std::string_view bytes) {
  MsgpackReader r(bytes);
  uint32_t n;
  if (!r.ReadMapHeader(&n, kMaxEnvelopeFields)) return 0;
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view key;
    if (!r.ReadStr(&key)) return 0;
    uint64_t rid = 0;
    if (key == "rid") return r.ReadUint(&rid) ? rid : 0;
    if (!r.Skip(nullptr, kMaxDepth + kEnvelopeDepth)) return 0;
  }
  return 0;
}

bool IsUnknownOp(const Status& s) { return s.code() == Code::kUnsupported; }

}  // namespace taskq
