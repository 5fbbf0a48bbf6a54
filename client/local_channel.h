// LocalChannel: the way between task_master's own job and its broker while
// the server loop runs on the job's thread (master/server.h, Server::Pump).
// A message is handed over in memory: no socket, no system call, no copy on
// the way back. Over an inproc socket the same hand-over costs libzmq's
// signalling (an eventfd written and read, and a poll, per message, four to
// five system calls) for each of the three exchanges of a lone task (put,
// get, ack).
//
// Thread: both ends are used by one thread at a time: the thread that runs
// the server loop. A Connection over it must be gone before the loop moves to
// a thread of its own (Server::RunInBackground).
#ifndef TASKQ_CLIENT_LOCAL_CHANNEL_H_
#define TASKQ_CLIENT_LOCAL_CHANNEL_H_

#include <deque>
#include <string>
#include <string_view>

namespace taskq {

struct LocalChannel {
  // The broker's peer id for the other end. A ROUTER makes five-byte ids;
  // a peer could announce this one in its handshake, so the server loop
  // drops whatever a socket peer sends under it (and replies to it never
  // go to the socket).
  static constexpr std::string_view kPeerId{"\0taskq-local-job", 16};

  std::deque<std::string> to_master;  // read in the loop's next step
  std::deque<std::string> to_client;  // the broker's replies, oldest first
};

}  // namespace taskq

#endif  // TASKQ_CLIENT_LOCAL_CHANNEL_H_
