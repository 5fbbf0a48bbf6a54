// WorkerLoop (worker/worker_loop.h), the part about which master it works
// for: a master lost or handing over, the next of the list, and the terms
// that keep one master's results from reaching another.
#include <iostream>

#include "worker/worker_loop.h"

namespace taskq {

void WorkerLoop::OnWelcome(const Welcome& w, const Session::Received& got, SessionActions* todo) {
  const std::string left = masters_.serving().Display();
  conn_->NoteWelcome(w);
  master_heartbeat_ = conn_->master().heartbeat;
  if (masters_.Welcomed()) {
    out_ << "Lost the master at " << left << "; now working for " << conn_->display() << std::endl;
    return NewTerm("of the master at " + left + " (it runs again those it did not get)", todo);
  }
  if (got.rejoined)
    out_ << "Reconnected to " << conn_->display()
         << (got.restarted ? " (the master restarted)" : "") << std::endl;
  if (got.new_epoch) NewTerm("of the master before its restart", todo);
}

void WorkerLoop::NewTerm(std::string whose, SessionActions* todo) {
  ++term_;
  stale_whose_ = std::move(whose);
  unstarted_.clear();  // ids of a master that is gone
  // Results sent and not acknowledged: the session sends them again to a
  // master of the same epoch (PROTOCOL.md 4.5), and another master of a
  // list has the same epoch only if started from a copy of the same journal.
  for (const auto& [rid, batch] : unacked_) {
    session_.Abandon(rid);
    std::erase(todo->resend, rid);
    dropped_ += batch.size();
  }
  unacked_.clear();
}

std::vector<uint64_t> WorkerLoop::Holding() const {
  // A hello to another master than the one whose tasks it holds: it is a
  // new session there, holding nothing (those ids would name its tasks).
  if (!masters_.AtServing()) return {};
  std::vector<uint64_t> ids;
  for (const auto& [id, term] : running_)
    if (term == term_) ids.push_back(id);
  for (const PendingResult& r : unsent_)
    if (r.term == term_) ids.push_back(r.id);
  for (const auto& [rid, batch] : unacked_) ids.insert(ids.end(), batch.begin(), batch.end());
  return ids;
}

// Results for tasks of another term name ids this master does not know (it
// restarted without its journal, or it is another master): they must not
// reach it. (Those sent already: NewTerm, Perform.)
void WorkerLoop::DropStale() {
  dropped_ += std::erase_if(unsent_, [&](const PendingResult& r) { return r.term != term_; });
  if (dropped_ > 0)
    out_ << "Dropped " << dropped_ << " result(s) for tasks " << stale_whose_ << std::endl;
  dropped_ = 0;
}

// Heartbeats out, hello again while no welcome came (Session::Tick), and a
// master that fell silent means a new connection: to it again, or, given
// several, to the next (MasterList), and so on while none says welcome.
void WorkerLoop::CheckMaster(TimePoint now) {
  if (now - last_sent_ >= o_.heartbeat) (void)Send(Ping{});
  SessionActions todo;
  session_.Tick(now, &todo);
  const std::chrono::milliseconds silence = SilenceLimit(master_heartbeat_);
  if (watch_silence_ && now - conn_->last_heard() > silence) {
    LeaveMaster(now, "Lost contact with the master at " + conn_->display(), &todo);
  } else if (!session_.welcomed() && masters_.Advance(now)) {
    Connect(now, &todo);
  }
  Perform(todo);
}

// The master is gone (silent, or handing over, said why): to it again, or,
// given several, to the next.
void WorkerLoop::LeaveMaster(TimePoint now, const std::string& why, SessionActions* todo) {
  watch_silence_ = false;
  out_ << why;
  if (masters_.size() > 1) masters_.Lost(now, SilenceLimit(master_heartbeat_));
  out_ << (masters_.size() > 1 ? "; trying " + masters_.current().Display() + "..."
                               : std::string("; reconnecting..."))
       << std::endl;
  Connect(now, todo);
}

void WorkerLoop::Connect(TimePoint now, SessionActions* todo) {
  const ServerAddress& to = masters_.current();
  if (Status s = conn_->MoveTo(to.TcpEndpoint(), to.Display()); !s.ok())
    err_ << "task_worker: " << s.message() << "\n";
  session_.OnDisconnect(now, todo);
}

}  // namespace taskq
