// SIGINT/SIGTERM as a readable file descriptor (the self-pipe trick), so event
// loops wake up on a signal through the same poll as their sockets, with no
// race between checking a flag and blocking.
#ifndef TASKQ_CLIENT_SIGNALS_H_
#define TASKQ_CLIENT_SIGNALS_H_

namespace taskq {

// Installs handlers for SIGINT and SIGTERM. Call once, from main, before
// starting threads. Idempotent.
void InstallSignalPipe();

// The read end of the pipe (readable once a signal arrived), or -1 when
// InstallSignalPipe was not called. Never drained: stays readable.
int SignalFd();

// How many stop signals arrived so far (a second one forces the exit).
int SignalCount();

}  // namespace taskq

#endif  // TASKQ_CLIENT_SIGNALS_H_
