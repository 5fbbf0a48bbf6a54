#include "client/session.h"

#include <cassert>

#include "proto/rid.h"

namespace taskq {
namespace {

// Requests whose fate may be unknown and that may still be sent again
// (session.h says why); the others are sent again only if not acted on.
bool Replayable(const Message& m) {
  return std::holds_alternative<Get>(m) || std::holds_alternative<Stats>(m) ||
         std::holds_alternative<Peek>(m) || std::holds_alternative<ResultMsg>(m) ||
         std::holds_alternative<Ack>(m);
}

// Requests whose task ids mean something only to the epoch they were made in.
bool NamesTaskIds(const Message& m) {
  return std::holds_alternative<ResultMsg>(m) || std::holds_alternative<Ack>(m);
}

}  // namespace

Session::Session(uint64_t instance, uint64_t epoch)
    : instance_(instance), epoch_(epoch != 0 ? epoch : instance) {}

uint64_t Session::Start(Message* request) {
  uint64_t* rid_field = RidField(*request);
  assert(rid_field && "only requests with a rid are kept in flight");
  const uint64_t rid = next_rid_++;
  *rid_field = rid;
  Request& r = flight_[rid];
  EncodeTo(*request, &r.bytes);
  r.op = OpName(*request);
  r.epoch = epoch_;
  r.ids = NamesTaskIds(*request);
  r.replay = Replayable(*request);
  // Not sent before a welcome: the master would not act on it.
  if (!welcomed_) r.doubt = Doubt::kNotActed;
  return rid;
}

const std::string& Session::Encoded(uint64_t rid) const {
  static const std::string kNone;
  auto it = flight_.find(rid);
  return it == flight_.end() ? kNone : it->second.bytes;
}

void Session::Abandon(uint64_t rid) { flight_.erase(rid); }

Session::Received Session::OnMessage(const Message& m, TimePoint now, SessionActions* todo) {
  if (const auto* w = std::get_if<Welcome>(&m)) return OnWelcome(*w, todo);
  if (const auto* e = std::get_if<ErrorMsg>(&m)) return OnError(*e, now, todo);
  const uint64_t* rid = RidField(m);
  if (!rid) return {};  // ping, shutdown
  if (flight_.erase(*rid) == 0) return {Kind::kStale, *rid};
  return {Kind::kReply, *rid};
}

Session::Received Session::OnError(const ErrorMsg& e, TimePoint now, SessionActions* todo) {
  auto it = flight_.find(e.rid);
  if (e.code != kErrHelloRequired) {
    if (it != flight_.end()) {
      flight_.erase(it);
      return {Kind::kReply, e.rid};
    }
    // The master could not read the rid of a message it could not decode:
    // with one request out, the error is about it.
    if (e.rid == 0 && flight_.size() == 1) {
      const uint64_t only = flight_.begin()->first;
      flight_.clear();
      return {Kind::kReply, only};
    }
    return {e.rid == 0 ? Kind::kNotice : Kind::kStale, e.rid};
  }
  // hello_required: the master did not act on that message, and does not
  // know this session any more.
  if (it != flight_.end()) {
    Request& r = it->second;
    r.doubt = Doubt::kNotActed;
    if (++r.forgotten > kMaxForgotten) {
      todo->ended.emplace_back(
          e.rid, Status::Error(Code::kProtocol, "the master forgot this connection " +
                                                    std::to_string(r.forgotten) +
                                                    " times in a row, at once after each hello"));
      flight_.erase(it);
    }
  }
  // While a hello is out, the hello_required answers to what went before it
  // change nothing more: its welcome comes next.
  if (welcomed_) Lost(now, todo);
  return {Kind::kHandled, e.rid};
}

Session::Received Session::OnWelcome(const Welcome& w, SessionActions* todo) {
  Received got{Kind::kWelcome};
  got.rejoined = !welcomed_;
  got.restarted = w.instance != instance_;
  const uint64_t epoch = w.epoch != 0 ? w.epoch : w.instance;  // docs/PROTOCOL.md 4.1
  got.new_epoch = epoch != epoch_;
  instance_ = w.instance;
  epoch_ = epoch;
  welcomed_ = true;
  for (auto it = flight_.begin(); it != flight_.end();) {
    Request& r = it->second;
    if (r.doubt == Doubt::kNone) {
      ++it;
      continue;
    }
    Settle(it->first, r, todo);
    it = r.doubt == Doubt::kNone ? std::next(it) : flight_.erase(it);
  }
  return got;
}

// Sent again (doubt cleared), or given up on (doubt left: the caller erases it).
void Session::Settle(uint64_t rid, Request& r, SessionActions* todo) {
  if (r.ids && r.epoch != epoch_) {
    todo->ended.emplace_back(
        rid, Status::Error(Code::kUnavailable,
                           "the master restarted without its journal and no longer knows the "
                           "tasks this " +
                               std::string(r.op) + " names"));
    return;
  }
  if (r.doubt == Doubt::kInDoubt && !r.replay) {
    todo->ended.emplace_back(
        rid, Status::Error(Code::kUnavailable,
                           "the connection to the master broke while a " + std::string(r.op) +
                               " was on its way: the master may or may not have done it"));
    return;
  }
  r.doubt = Doubt::kNone;
  r.epoch = epoch_;
  todo->resend.push_back(rid);
}

void Session::Lost(TimePoint now, SessionActions* todo) {
  welcomed_ = false;
  for (auto& [rid, r] : flight_)
    if (r.doubt == Doubt::kNone) r.doubt = Doubt::kInDoubt;
  SayHello(now, todo);
}

void Session::OnDisconnect(TimePoint now, SessionActions* todo) {
  // Even while a hello is out: it may have gone with the connection.
  Lost(now, todo);
}

void Session::SayHello(TimePoint now, SessionActions* todo) {
  hello_at_ = now;
  todo->hello = true;
}

void Session::Tick(TimePoint now, SessionActions* todo) {
  if (now >= NextTick()) SayHello(now, todo);
}

TimePoint Session::NextTick() const {
  return welcomed_ ? TimePoint::max() : hello_at_ + kHelloAgain;
}

}  // namespace taskq
