// Session: what a peer remembers of its session with the master, with no
// socket (docs/PROTOCOL.md section 4): it hands out rids, keeps each request
// until its reply, says what a received message means, and, when the
// session is lost, what to send again. Client::Call and task_worker's loop
// both run their requests through one; tests/session_test.cc drives it
// message by message.
//
// The owner sends and receives; the session tells it what to do next
// through SessionActions: say hello, send requests again (their bytes, as
// first encoded, same rid), give up on some.
//
// The session is lost when the transport dropped (OnDisconnect: libzmq
// reconnects the socket, or the owner opened a new one) or when the master
// answers hello_required (it forgot us: it restarted, or declared us dead).
// Then every request in flight is in doubt (the master may or may not have
// acted on it) except those answered hello_required (it did not act). Once
// a welcome comes, each is sent again or given up on by these rules:
//
//  - get, stats, peek: sent again. They change nothing but leases, and a
//    lease of the lost session ends with it (the master hands the entry
//    back), so asking twice hands nothing out twice. (Entries a get without
//    lease took are gone with a lost reply, asked again or not.)
//  - result, ack: sent again if the welcome names the same epoch: the
//    master takes one result per task, and an id acknowledged twice is
//    counted unknown. Another epoch means other tasks behind the same ids
//    (a master restarted without its journal): given up on, kUnavailable.
//    (A result_ok the master held back, lazy_ack, goes with the lost
//    session: the result is sent again, a duplicate there.)
//  - put, retry, purge: sent again only if answered hello_required. In
//    doubt, they are given up on (kUnavailable, words saying so): a second
//    put would add its tasks twice. A put's fate is learned from its reply
//    queue's counts (stats: owed), as a resumed job does (master/job.h).
//
// A request answered hello_required more than kMaxForgotten times is given
// up on (kProtocol): a master that forgets us at once each time.
//
// Thread: a Session is used by one thread at a time, its owner's.
#ifndef TASKQ_CLIENT_SESSION_H_
#define TASKQ_CLIENT_SESSION_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "client/clock.h"
#include "proto/message.h"
#include "proto/status.h"

namespace taskq {

// What the owner must do after a Session call, in this order: hello, then
// the requests to send (again), then what ended. The owner clears it.
struct SessionActions {
  bool hello = false;                              // say hello (with what the owner holds)
  std::vector<uint64_t> resend;                    // send Encoded(rid), in this order
  std::vector<std::pair<uint64_t, Status>> ended;  // requests given up on (rid, why); forgotten

  bool empty() const { return !hello && resend.empty() && ended.empty(); }
};

class Session {
 public:
  // Hello unanswered this long (it may have been lost with its connection): say it again.
  static constexpr std::chrono::seconds kHelloAgain{2};
  static constexpr int kMaxForgotten = 3;

  // What a received message is, for the owner.
  enum class Kind {
    kReply,    // answers request rid (an error included); the session forgot that request
    kWelcome,  // a welcome; restarted and new_epoch say what changed
    kStale,    // a reply to no request in flight (late, or abandoned): skip it
    kHandled,  // hello_required: the session dealt with it (see the actions)
    kNotice,   // ping, shutdown, an error about no request: the owner's to handle
  };
  struct Received {
    Kind kind = Kind::kNotice;
    uint64_t rid = 0;        // kReply, kStale: the rid it carries
    bool rejoined = false;   // kWelcome: it ends a lost session
    bool restarted = false;  // kWelcome: another master instance than before
    bool new_epoch = false;  // kWelcome: and with other task ids
  };

  // A session that starts welcomed by a master (Connection::Open's welcome).
  Session(uint64_t instance, uint64_t epoch);

  // Gives request the next rid, encodes it and keeps it in flight until its
  // reply. Returns the rid; send Encoded(rid) now if welcomed(), else not:
  // it comes in the welcome's resend. Messages that are no requests (ping,
  // release, cancel, goodbye) do not go through here.
  uint64_t Start(Message* request);
  // The bytes of a request in flight (valid until the next call that changes the session).
  const std::string& Encoded(uint64_t rid) const;
  // Forgets a request whose reply the owner no longer waits for (its send
  // failed, its deadline passed); a late reply is then kStale.
  void Abandon(uint64_t rid);

  // What m means; acts on hello_required and welcome.
  Received OnMessage(const Message& m, TimePoint now, SessionActions* todo);
  // The transport dropped (or the owner replaced it): everything in flight is in doubt.
  void OnDisconnect(TimePoint now, SessionActions* todo);
  // Says hello again when no welcome came for kHelloAgain.
  void Tick(TimePoint now, SessionActions* todo);
  // When Tick has something to do; TimePoint::max() while welcomed.
  TimePoint NextTick() const;

  // The current session was welcomed (false from a loss until the next welcome).
  bool welcomed() const { return welcomed_; }
  uint64_t epoch() const { return epoch_; }
  uint64_t instance() const { return instance_; }
  std::size_t in_flight() const { return flight_.size(); }
  bool InFlight(uint64_t rid) const { return flight_.count(rid) > 0; }

 private:
  // Where a request stands after the session was lost.
  enum class Doubt { kNone, kInDoubt, kNotActed };
  struct Request {
    std::string bytes;
    std::string_view op;  // its name, for messages (static: OpName)
    uint64_t epoch = 0;   // when it was made
    bool ids = false;     // names task ids: valid in its epoch only (result, ack)
    bool replay = false;  // safe to send again when its fate is unknown
    Doubt doubt = Doubt::kNone;
    int forgotten = 0;  // hello_required answers so far
  };

  Received OnError(const ErrorMsg& e, TimePoint now, SessionActions* todo);
  Received OnWelcome(const Welcome& w, SessionActions* todo);
  // The master no longer knows this session: hello, and doubt what is in flight.
  void Lost(TimePoint now, SessionActions* todo);
  void SayHello(TimePoint now, SessionActions* todo);
  // After a welcome: what a request in doubt becomes.
  void Settle(uint64_t rid, Request& r, SessionActions* todo);

  uint64_t instance_;
  uint64_t epoch_;
  bool welcomed_ = true;
  TimePoint hello_at_;
  uint64_t next_rid_ = 1;
  std::map<uint64_t, Request> flight_;  // by rid: ordered, so requests go again in order
};

}  // namespace taskq

#endif  // TASKQ_CLIENT_SESSION_H_
