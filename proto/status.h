// Status and Result<T>: expected failures as values (leveldb style).
// Library exceptions (cppzmq, msgpack) are caught at the boundary and turned
// into one of these, so callers never see a stack trace.
#ifndef TASKQ_PROTO_STATUS_H_
#define TASKQ_PROTO_STATUS_H_

#include <optional>
#include <string>
#include <utility>

namespace taskq {

enum class Code {
  kOk = 0,
  kInvalid,       // bad input from the user or a peer
  kEmpty,         // a get timed out with nothing to hand out (queue.Empty)
  kFull,          // a put found its queue full until its timeout (queue.Full)
  kTimeout,       // a deadline passed
  kAuthFailed,    // the CURVE handshake failed: wrong authkey
  kUnavailable,   // the master could not be reached
  kProtocol,      // the peer broke the protocol (error reply, bad message)
  kInterrupted,   // a signal asked us to stop
  kIo,            // file or socket error
  kShutdown,      // the master is shutting down
  kUnsupported,   // a message of an op this version does not know
  kCannotListen,  // a server could not bind its address (in use, not local)
};

class Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(Code code, std::string message) {
    Status s;
    s.code_ = code;
    s.message_ = std::move(message);
    return s;
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  // One sentence a user can act on; empty when ok().
  const std::string& message() const { return message_; }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Either a value or a non-ok Status.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit on purpose
  Result(Status status) : status_(std::move(status)) {}  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T& operator*() { return *value_; }
  T* operator->() { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace taskq

// Returns the Status of expr from the enclosing function unless it is ok.
#define TASKQ_TRY(expr)                          \
  do {                                           \
    ::taskq::Status taskq_try_s_ = (expr);       \
    if (!taskq_try_s_.ok()) return taskq_try_s_; \
  } while (0)

#endif  // TASKQ_PROTO_STATUS_H_
