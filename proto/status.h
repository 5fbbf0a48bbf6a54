// Status and Result<T>: expected failures as values (leveldb style).
// Library exceptions (cppzmq, msgpack) are caught at the boundary and turned
// into one of these, so callers never see a stack trace.
#ifndef TASKQ_PROTO_STATUS_H_
#define TASKQ_PROTO_STATUS_H_

#include <cstdio>
#include <cstdlib>
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
  kForbidden,     // the master refused: the key's role may not do that
  kTakenOver,     // another master took over the store this one wrote (task_master --store)
};

// [[nodiscard]]: a failure dropped without a look is a bug; a caller that
// means to ignore one says so with (void).
class [[nodiscard]] Status {
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

namespace status_internal {
// Ends the process: a Result was used against its contract (a bug in the
// caller, never an expected failure).
[[noreturn]] inline void Misuse(const char* what, const Status& s) {
  std::fprintf(stderr, "taskq: %s%s\n", what, s.message().c_str());
  std::abort();
}
}  // namespace status_internal

// Either a value or a non-ok Status. Reading the value of a Result that
// holds an error ends the process with that error's message: check ok()
// first.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose
  // status must not be ok: a Result without a value must say why.
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok())
      status_internal::Misuse("a Result was made from an ok Status, with no value", status_);
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() { return Checked(); }
  const T& value() const { return Checked(); }
  T& operator*() { return Checked(); }
  const T& operator*() const { return Checked(); }
  T* operator->() { return &Checked(); }
  const T* operator->() const { return &Checked(); }

 private:
  T& Checked() {
    if (!value_) status_internal::Misuse("the value of a failed Result was read: ", status_);
    return *value_;
  }
  const T& Checked() const {
    if (!value_) status_internal::Misuse("the value of a failed Result was read: ", status_);
    return *value_;
  }

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
