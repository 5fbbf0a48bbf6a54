// NatsCluster: real nats-server processes for a test, on 127.0.0.1 only: one
// server, or three routed into one cluster, each with JetStream on and a store
// directory of its own under /tmp. A server can be killed (SIGKILL) and started
// again on the same ports and store directory, as a crashed machine comes back.
//
// Ports: every port (clients, routes) is reserved before any server starts
// (ReserveLoopbackPort, tests/process.h), so each server's routes name the
// others from the start and a restart gets its ports back with no race.
// nats-server's own "-p -1" (and "--cluster nats://127.0.0.1:-1") also picks
// free ports, but a server learns its peers' route ports only once they run,
// and a restarted server would have to ask the OS again for a port another
// process may have taken in between.
//
// Ready means that JetStream answers through that server: an account-info
// request (the metadata leader answers it, so the cluster has elected one)
// succeeds on a connection to that server alone. nats-server's monitoring
// /healthz?js-enabled-only=true says "ok" before the metadata leader exists
// (seen with 2.9.10), so it is not used. Every wait is bounded.
//
// Thread: one thread at a time (the test's).
#ifndef TASKQ_TESTS_NATS_CLUSTER_H_
#define TASKQ_TESTS_NATS_CLUSTER_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "master/nats_handle.h"
#include "tests/process.h"

namespace taskq::testing {

// NatsPtr (owners for libnats objects) and NatsError come from
// master/nats_handle.h, shared with the store.

// Connects to urls ("nats://h:p,nats://h:p"), waiting at most timeout for each
// server's INFO; reconnects after a loss every 50 ms (not libnats's 2 s).
// Null, with *error set (and *status, if given), on failure.
NatsPtr<natsConnection> NatsConnect(const std::string& urls, std::chrono::milliseconds timeout,
                                    std::string* error, natsStatus* status = nullptr);

// The path of nats-server: $TASKQ_NATS_SERVER, else the first on $PATH, else
// /usr/sbin/nats-server; empty if none is an executable file.
std::string NatsServerBin();

class NatsCluster {
 public:
  // Starts n servers (1, or 3 in a cluster) and waits until each is ready.
  // Null, with *error saying why (nats-server missing, a server not ready by
  // the deadline, with the end of its log), on failure.
  static std::unique_ptr<NatsCluster> Start(int n, std::chrono::milliseconds deadline,
                                            std::string* error);
  // Kills every server and removes the store directories.
  ~NatsCluster();

  int size() const { return static_cast<int>(servers_.size()); }
  // "nats://127.0.0.1:P1,nats://127.0.0.1:P2,...", every server, dead or not.
  std::string Urls() const;
  std::string Url(int i) const;
  // Server i's name: "n1", "n2", "n3" (server_name, as stream info reports it).
  std::string Name(int i) const { return "n" + std::to_string(i + 1); }
  // The index of the server named name, or -1.
  int IndexOf(const std::string& name) const;

  // SIGKILL to server i, and waits for it to end; false if it did not by the deadline.
  bool Kill(int i, std::chrono::milliseconds deadline);
  // Starts server i again (same name, ports, store) and waits until it is
  // ready; false, with *error, if it is not by the deadline.
  bool Restart(int i, std::chrono::milliseconds deadline, std::string* error);

 private:
  struct Server {
    int port = 0, route_port = 0;
    int port_fd = -1, route_fd = -1;  // the reservations, held until the end
    std::string store;
    std::unique_ptr<Process> process;
  };

  NatsCluster() = default;
  std::vector<std::string> Argv(int i) const;
  bool Launch(int i, std::string* error);
  bool WaitReady(int i, std::chrono::steady_clock::time_point end, std::string* error);
  bool WaitForPlacement(std::chrono::steady_clock::time_point end, std::string* error);

  std::string bin_, dir_;
  std::vector<Server> servers_;
};

}  // namespace taskq::testing

#endif  // TASKQ_TESTS_NATS_CLUSTER_H_
