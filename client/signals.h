// Signals as readable file descriptors (the self-pipe trick), so event loops
// wake up on a signal through the same poll as their sockets, with no race
// between checking a flag and blocking.
//
// SIGINT and SIGTERM ask to stop: SignalFd() becomes readable and stays so.
// SIGUSR1 asks for a status report: StatusFd() becomes readable until
// DrainStatus() reads it.
#ifndef TASKQ_CLIENT_SIGNALS_H_
#define TASKQ_CLIENT_SIGNALS_H_

namespace taskq {

// Installs the handlers. Call once, from main, before starting threads:
// the signals are then blocked in every thread (the mask is inherited) and
// one thread of its own takes them (sigwait), so no other thread is ever
// interrupted by them (EINTR).
// With exit_on_second, a second stop signal ends the process at once with
// code 130 (for a master, whose shutdown must not wait on anything then).
void InstallSignalPipe(bool exit_on_second = false);

// The read end of the stop pipe, or -1 before InstallSignalPipe.
int SignalFd();
// How many stop signals arrived so far (a second one forces the exit).
int SignalCount();

// The read end of the status pipe (SIGUSR1), or -1.
int StatusFd();
// Empties the status pipe; true if a request was there.
bool DrainStatus();

}  // namespace taskq

#endif  // TASKQ_CLIENT_SIGNALS_H_
