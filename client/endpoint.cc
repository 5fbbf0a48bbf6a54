#include "client/endpoint.h"

#include <charconv>

namespace taskq {
namespace {

Status BadAddress(std::string_view text, const char* why) {
  return Status::Error(Code::kInvalid,
                       "invalid server address '" + std::string(text) + "': " + why);
}

bool ParsePort(std::string_view s, int* port) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 1 || v > 65535) return false;
  *port = v;
  return true;
}

}  // namespace

std::string ServerAddress::Display() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string ServerAddress::TcpEndpoint() const { return "tcp://" + Display(); }

Result<ServerAddress> ParseServerAddress(std::string_view text, int default_port) {
  ServerAddress a;
  a.port = default_port;
  std::string_view rest;
  if (text.empty()) return BadAddress(text, "it is empty");
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return BadAddress(text, "missing ']'");
    a.host = std::string(text.substr(1, close - 1));
    rest = text.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return BadAddress(text, "junk after ']'");
    if (!rest.empty())
      rest.remove_prefix(1);
    else
      rest = {};
    if (!rest.empty() || text.size() > close + 1) {
      if (!ParsePort(rest, &a.port)) return BadAddress(text, "the port must be 1..65535");
    }
  } else {
    auto colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos)
      return BadAddress(text, "write IPv6 addresses as [ADDR]:PORT");
    a.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos && !ParsePort(text.substr(colon + 1), &a.port))
      return BadAddress(text, "the port must be 1..65535");
  }
  if (a.host.empty()) return BadAddress(text, "the host is empty");
  if (a.port < 1 || a.port > 65535) return BadAddress(text, "the port must be 1..65535");
  return a;
}

}  // namespace taskq
