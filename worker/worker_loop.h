// WorkerLoop: task_worker's event loop over one Connection (RunWorker in
// worker/worker.h starts it). Each pass: ask for tasks when the window has
// room, wait on the master, the executor's wake-up fd and the signal fd,
// take finished tasks, read the master, send results, check the master's
// silence. Rids, requests in flight, hello again and the epoch rules are
// its Session's (client/session.h); the loop keeps the tasks and results.
// Given several masters, it moves to another when it loses its own
// (worker/master_list.h): a new session, in a new term.
//
// Thread: the worker's main thread; the Executor's pool only runs handlers.
#ifndef TASKQ_WORKER_WORKER_LOOP_H_
#define TASKQ_WORKER_WORKER_LOOP_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <unordered_map>
#include <vector>

#include "client/connection.h"
#include "client/session.h"
#include "worker/executor.h"
#include "worker/handler.h"
#include "worker/master_list.h"
#include "worker/task_printer.h"
#include "worker/worker.h"

namespace taskq {

// The exit code for the status that ends the worker. connected: it had a
// welcome; a port that then turns out not to be a taskq master's (it
// restarted as something else) is no mistake in --server.
int ExitCodeFor(const Status& s, bool connected);

// A finished task's result until the master acknowledged it.
struct PendingResult {
  uint64_t id = 0;
  bool ok = true;
  std::string data;  // raw value when ok, error text otherwise
  uint64_t elapsed_us = 0;
  bool retry = true;
  bool worker_fault = false;
  uint64_t term = 0;     // the loop's term (WorkerLoop::term_) when the task came
  uint32_t attempt = 0;  // the delivery it reports on (result.attempt)
};

class WorkerLoop {
 public:
  // conn has had its welcome (Connection::Open) from masters.current().
  // o, out and err must outlive the loop.
  WorkerLoop(const WorkerOptions& o, std::unique_ptr<Connection> conn, MasterList masters,
             HandlerSet handlers, std::ostream& out, std::ostream& err);

  // Runs until the master shuts down, a signal stops the worker or the
  // connection fails for good; returns the exit code (client/exit_codes.h).
  int Run();

 private:
  // One pass of the loop, in order.
  Status Ask();
  Result<uint32_t> Wait(TimePoint now);
  std::optional<int> OnSignal(TimePoint now);
  Status ReadMaster(std::optional<int>* exit);
  void Dispatch(const Message& m, std::optional<int>* exit);
  void CheckMaster(TimePoint now);

  // Messages.
  void OnReply(const Message& m, uint64_t rid, std::optional<int>* exit);
  void OnError(const ErrorMsg& e, std::optional<int>* exit);
  void OnItems(const Items& m);
  void OnWelcome(const Welcome& w, const Session::Received& got, SessionActions* todo);
  // A welcome from another master, or naming another epoch: the tasks held
  // so far are not this master's. Gives up on their results in flight.
  void NewTerm(std::string whose, SessionActions* todo);
  void Start(const Entry& e, TimePoint now);
  // Prints "run task ..." (from the loop, or a pool thread as a task starts).
  void SayRun(const Item& t, Handler* h, TimePoint now);
  // Does what the session said: hello, requests again, some given up on.
  void Perform(const SessionActions& todo);

  // Results.
  void Finish(FinishedTask t);
  void SendResults();
  // Sends request rid the session keeps (Session::Start) if welcomed.
  Status SendTracked(uint64_t rid);

  uint32_t Window() const;
  // Drops unsent results of tasks of an older term; says how many went,
  // with those given up on in flight (dropped_).
  void DropStale();
  void ReleaseUnstarted();
  // Tasks this process holds, of the current term: running, or results not
  // acknowledged (hello.holding); none for a hello to another master.
  std::vector<uint64_t> Holding() const;
  Status Send(const Message& m) {
    last_sent_ = Clock::now();
    return conn_->Send(m);
  }
  int Exit(int code, bool goodbye);
  int Report(const Status& s);
  // The master is gone (why: a sentence naming it): says so, then
  // connects to it again or, given several, to the next of the list.
  void LeaveMaster(TimePoint now, const std::string& why, SessionActions* todo);
  // Closes the socket and opens one to masters_.current(); the session is lost.
  void Connect(TimePoint now, SessionActions* todo);

  const WorkerOptions& o_;
  std::unique_ptr<Connection> conn_;
  HandlerSet handlers_;
  const std::vector<std::string> kinds_;  // handlers_', for every get (a lone task's path)
  std::ostream& out_;
  std::ostream& err_;
  TaskPrinter printer_;
  Executor executor_;
  std::atomic<bool> cancelled_{false};
  CancelToken cancel_;

  // Rids, requests in flight, hello again, epochs (whose task ids the tasks
  // we hold carry): its welcomed() is "connected".
  Session session_;
  MasterList masters_;
  // Tasks and results are tagged with the term they came in: a new one
  // begins with each welcome from another master or of another epoch
  // (NewTerm), whose task ids are not the old ones. Epochs alone would do
  // but for masters started from copies of one journal.
  uint64_t term_ = 1;
  std::string stale_whose_ = "of the master before its restart";  // for DropStale's line
  std::chrono::milliseconds master_heartbeat_;
  TimePoint last_sent_ = Clock::now();
  // A master silent for 3 heartbeats means a new socket, once per welcome
  // (not after a hello_required: that master is there).
  bool watch_silence_ = true;

  uint32_t in_flight_ = 0;                          // tasks received and not finished
  std::unordered_map<uint64_t, uint64_t> running_;  // their ids, with their terms (hello.holding)
  uint64_t get_rid_ = 0;
  bool get_out_ = false;  // a get is waiting for its answer
  uint32_t get_max_ = 0;
  TimePoint get_sent_;
  // Moving averages that size the window: time per task, round trip of a get.
  double task_us_ = 0, rtt_us_ = 0;

  std::vector<PendingResult> unsent_;                  // finished, not sent yet
  std::map<uint64_t, std::vector<uint64_t>> unacked_;  // task ids by rid: sent, not acknowledged
  std::size_t dropped_ = 0;  // results of an older term given up on, not told yet

  bool stopping_ = false;
  TimePoint stop_deadline_;
  std::vector<uint64_t> unstarted_;  // tasks that came while stopping: handed back unstarted
  std::vector<int> wait_fds_;        // what Wait watches besides the connection
};

}  // namespace taskq

#endif  // TASKQ_WORKER_WORKER_LOOP_H_
