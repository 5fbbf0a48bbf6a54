#include "client/endpoint.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
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

// Letters, digits, '-', '.' and '_' make a host name or an IPv4 address;
// an IPv6 address (in brackets) has hex digits, ':' and '.'.
bool IsHostName(std::string_view h, bool v6) {
  for (char c : h) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && c != '-' && c != '.' && c != '_' && !(v6 && c == ':')) return false;
  }
  return true;
}

std::string_view Trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Host names are case-insensitive: "Lab1" and "lab1" are one master.
bool SameMaster(const ServerAddress& a, const ServerAddress& b) {
  return a.port == b.port &&
         std::equal(a.host.begin(), a.host.end(), b.host.begin(), b.host.end(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
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
  const std::string_view given = text;
  if (text.empty()) return BadAddress(text, "it is empty; give HOST, HOST:PORT or tcp://HOST:PORT");
  // A list is for a worker (ParseServerList): a client's tasks and outcomes
  // live on the one master it put them to.
  if (text.find(',') != std::string_view::npos)
    return BadAddress(given,
                      "it names several masters, and only a worker (task_worker, taskq.Worker) "
                      "takes a list; give one HOST[:PORT]");
  // tcp://HOST:PORT is how ZeroMQ programs (PROTOCOL.md's Python client) name
  // the master; any other scheme is a mistake worth a sentence.
  if (const auto scheme = text.find("://"); scheme != std::string_view::npos) {
    if (text.substr(0, scheme) != "tcp")
      return BadAddress(given,
                        "a taskq master is reached over tcp: give HOST, HOST:PORT or "
                        "tcp://HOST:PORT");
    text.remove_prefix(scheme + 3);
    if (!text.empty() && text.back() == '/') text.remove_suffix(1);
    if (text.empty()) return BadAddress(given, "the host is empty");
  }
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return BadAddress(given, "missing ']'");
    a.host = std::string(text.substr(1, close - 1));
    rest = text.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return BadAddress(given, "junk after ']'");
    if (!rest.empty())
      rest.remove_prefix(1);
    else
      rest = {};
    if (!rest.empty() || text.size() > close + 1) {
      if (!ParsePort(rest, &a.port)) return BadAddress(given, "the port must be 1..65535");
    }
  } else {
    auto colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos)
      return BadAddress(given, "write IPv6 addresses as [ADDR]:PORT");
    a.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos && !ParsePort(text.substr(colon + 1), &a.port))
      return BadAddress(given, "the port must be 1..65535");
  }
  if (a.host.empty()) return BadAddress(given, "the host is empty");
  if (!IsHostName(a.host, text.front() == '['))
    return BadAddress(given,
                      "a host name has only letters, digits, '-' and '.'; give HOST, "
                      "HOST:PORT or tcp://HOST:PORT");
  if (a.port < 1 || a.port > 65535) return BadAddress(given, "the port must be 1..65535");
  return a;
}

Result<std::vector<ServerAddress>> ParseServerList(std::string_view text, int default_port) {
  if (text.find(',') == std::string_view::npos) {
    Result<ServerAddress> one = ParseServerAddress(text, default_port);  // as before lists
    if (!one.ok()) return one.status();
    return std::vector<ServerAddress>{*one};
  }
  std::vector<ServerAddress> list;
  std::size_t n = 0;
  for (std::string_view rest = text;;) {
    const std::size_t comma = rest.find(',');
    const std::string_view element = Trimmed(rest.substr(0, comma));
    ++n;
    if (element.empty())
      return Status::Error(Code::kInvalid, "invalid server list '" + std::string(text) +
                                               "': master " + std::to_string(n) +
                                               " is empty; give HOST[:PORT],HOST[:PORT]... "
                                               "with no empty element between the commas");
    Result<ServerAddress> a = ParseServerAddress(element, default_port);
    if (!a.ok()) return a.status();  // its sentence names the element
    for (const ServerAddress& before : list)
      if (SameMaster(before, *a))
        return Status::Error(Code::kInvalid, "invalid server list '" + std::string(text) +
                                                 "': it names " + a->Display() +
                                                 " twice; give each master once");
    list.push_back(*a);
    if (comma == std::string_view::npos) return list;
    rest.remove_prefix(comma + 1);
  }
}

Status ResolveHost(const ServerAddress& address) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(address.host.c_str(), nullptr, &hints, &found);
  if (found) freeaddrinfo(found);
  // EAI_AGAIN: the resolver could not answer now (no network yet at boot):
  // not the user's mistake. libzmq resolves again on each connect attempt.
  if (rc == 0 || rc == EAI_AGAIN) return Status::Ok();
  return Status::Error(Code::kInvalid, "cannot resolve " + address.host + ": " + gai_strerror(rc) +
                                           "; give the master's host name or IP address");
}

}  // namespace taskq
