// Parsing "HOST[:PORT]" into a ZeroMQ TCP endpoint.
#ifndef TASKQ_CLIENT_ENDPOINT_H_
#define TASKQ_CLIENT_ENDPOINT_H_

#include <string>
#include <string_view>
#include <vector>

#include "proto/status.h"

namespace taskq {

constexpr int kDefaultPort = 5000;

struct ServerAddress {
  std::string host;
  int port = kDefaultPort;

  std::string Display() const;      // "HOST:PORT", as shown to users
  std::string TcpEndpoint() const;  // "tcp://HOST:PORT" ([v6] bracketed)
};

// Accepts "host", "host:port", "[v6]" and "[v6]:port", each also after
// "tcp://" (a sentence for any other scheme, or a host with other
// characters than a host name has); the port, when given in
// the string, wins over default_port.
Result<ServerAddress> ParseServerAddress(std::string_view text, int default_port);

// A list of masters, "HOST[:PORT][,HOST[:PORT]...]" (task_worker --server):
// each element as ParseServerAddress takes it, spaces around it ignored.
// Without a comma, exactly ParseServerAddress (spaces included). kInvalid
// names the element for an empty one ("a,,b", "a,") and for a master
// listed twice (same host, same port once the default is applied).
Result<std::vector<ServerAddress>> ParseServerList(std::string_view text, int default_port);

// Looks the host up once (getaddrinfo): kInvalid with a sentence ("cannot
// resolve HOST: Name or service not known; ...") when it names no machine.
// libzmq would instead retry the name for ever without a word.
Status ResolveHost(const ServerAddress& address);

}  // namespace taskq

#endif  // TASKQ_CLIENT_ENDPOINT_H_
