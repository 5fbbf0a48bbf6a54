// The ceiling: raw ZeroMQ with CURVE on this machine, no taskq in the way.
// A child process echoes on a ROUTER (CURVE server); the parent's DEALER
// (CURVE client) measures lock-step round trips (one message in flight),
// then throughput with many in flight.
//
//   curve_probe [--round-trips N] [--inflight K] [--messages M] [--size B] [--per-turn T]
//               [--echo-work US] [--send-work US] [--spin US]
//
// --per-turn 2: each lock-step round trip sends two messages and waits for
// their two echoes, the messages a lone taskq task costs (result and get
// one way, items and the held result_ok the other): what the extra pair
// costs raw (README, "Performance").
//
// What work costs a lone round trip (README, "Why the project stops short
// of 1.2x"): --echo-work US keeps the echo busy US microseconds before it
// answers (work on the message's path, as a worker's or a master's);
// --send-work US keeps the sender busy as long after it sent (work while
// the reply is on its way). --spin US: both ends poll without blocking for
// up to US microseconds before they block (busy-polling, not what taskq does).
//
// Prints one JSON line: {"system": "zeromq-curve", "p50_us", "p99_us",
// "round_trips_per_s"}.
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <zmq.hpp>

namespace {

struct Work {
  int echo_us = 0, send_us = 0, spin_us = 0;
};

void BusyFor(int us) {
  if (us <= 0) return;
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  while (std::chrono::steady_clock::now() < until) {
  }
}

// A receive that spins for up to spin_us before it blocks.
bool Receive(zmq::socket_t& s, zmq::message_t* m, int spin_us) {
  if (spin_us > 0) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us);
    do {
      if (s.recv(*m, zmq::recv_flags::dontwait)) return true;
    } while (std::chrono::steady_clock::now() < until);
  }
  return s.recv(*m).has_value();
}

struct Keys {
  char server_public[41], server_secret[41], client_public[41], client_secret[41];
};

Keys MakeKeys() {
  Keys k;
  zmq_curve_keypair(k.server_public, k.server_secret);
  zmq_curve_keypair(k.client_public, k.client_secret);
  return k;
}

// The echo server: sends its port up the pipe, echoes until "stop".
int Serve(const Keys& k, int port_pipe, const Work& work) {
  zmq::context_t ctx(1);
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::curve_server, 1);
  router.set(zmq::sockopt::curve_secretkey, std::string(k.server_secret));
  router.set(zmq::sockopt::sndhwm, 100000);
  router.set(zmq::sockopt::rcvhwm, 100000);
  router.bind("tcp://127.0.0.1:*");
  const std::string ep = router.get(zmq::sockopt::last_endpoint);
  const int port = std::stoi(ep.substr(ep.rfind(':') + 1));
  if (write(port_pipe, &port, sizeof port) != sizeof port) return 1;
  for (;;) {
    zmq::message_t id, body;
    if (!Receive(router, &id, work.spin_us)) continue;
    (void)router.recv(body);
    if (body.to_string_view() == "stop") return 0;
    BusyFor(work.echo_us);
    router.send(id, zmq::send_flags::sndmore);
    router.send(body, zmq::send_flags::none);
  }
}

double Percentile(std::vector<double>& v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()))];
}

}  // namespace

int main(int argc, char** argv) {
  int round_trips = 2000, inflight = 1000, messages = 200000, size = 32, per_turn = 1;
  Work work;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (a == "--round-trips")
      round_trips = v;
    else if (a == "--inflight")
      inflight = v;
    else if (a == "--messages")
      messages = v;
    else if (a == "--size")
      size = v;
    else if (a == "--per-turn")
      per_turn = std::max(1, v);
    else if (a == "--echo-work")
      work.echo_us = v;
    else if (a == "--send-work")
      work.send_us = v;
    else if (a == "--spin")
      work.spin_us = v;
  }
  const Keys k = MakeKeys();
  int fds[2];
  if (pipe(fds) != 0) return 1;
  const pid_t child = fork();
  if (child == 0) _exit(Serve(k, fds[1], work));
  int port = 0;
  if (read(fds[0], &port, sizeof port) != sizeof port) return 1;

  zmq::context_t ctx(1);
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::curve_serverkey, std::string(k.server_public));
  dealer.set(zmq::sockopt::curve_publickey, std::string(k.client_public));
  dealer.set(zmq::sockopt::curve_secretkey, std::string(k.client_secret));
  dealer.set(zmq::sockopt::sndhwm, 100000);
  dealer.set(zmq::sockopt::rcvhwm, 100000);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect("tcp://127.0.0.1:" + std::to_string(port));
  const std::string payload(size, 'x');
  zmq::message_t reply;
  // One lock-step turn: per_turn messages out, their echoes back.
  auto turn = [&] {
    for (int j = 0; j < per_turn; ++j) dealer.send(zmq::buffer(payload));
    BusyFor(work.send_us);
    for (int j = 0; j < per_turn; ++j) (void)Receive(dealer, &reply, work.spin_us);
  };
  for (int i = 0; i < 200; ++i) turn();  // warm up: handshake, caches
  std::vector<double> us;
  us.reserve(round_trips);
  for (int i = 0; i < round_trips; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    turn();
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  const auto t0 = std::chrono::steady_clock::now();
  int sent = 0, got = 0;
  for (; sent < std::min(inflight, messages); ++sent) dealer.send(zmq::buffer(payload));
  while (got < messages) {
    (void)dealer.recv(reply);
    ++got;
    if (sent < messages) {
      dealer.send(zmq::buffer(payload));
      ++sent;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  dealer.send(zmq::str_buffer("stop"));
  waitpid(child, nullptr, 0);
  std::printf(
      "{\"system\": \"zeromq-curve\", \"size\": %d, \"per_turn\": %d, \"p50_us\": %.1f, "
      "\"p99_us\": %.1f, \"round_trips_per_s\": %.0f}\n",
      size, per_turn, Percentile(us, 0.5), Percentile(us, 0.99), secs > 0 ? messages / secs : 0.0);
  return 0;
}
