#include "master/nats_subject.h"

#include <sodium.h>

namespace taskq {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";

bool Stays(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // lower case too: E writes upper case only, so one name has one token
}

constexpr std::size_t kMaxConsumerName = 200;

}  // namespace

std::string EncodeToken(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (const char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (Stays(c)) {
      out += ch;
    } else {
      out += '_';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

std::optional<std::string> DecodeToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (std::size_t i = 0; i < token.size(); ++i) {
    const auto c = static_cast<unsigned char>(token[i]);
    if (Stays(c)) {
      out += token[i];
      continue;
    }
    if (c != '_' || token.size() - i < 3) return std::nullopt;
    const int hi = HexValue(token[i + 1]), lo = HexValue(token[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    const auto byte = static_cast<unsigned char>(hi << 4 | lo);
    if (Stays(byte)) return std::nullopt;  // E would have kept it as it is
    out += static_cast<char>(byte);
    i += 2;
  }
  return out;
}

std::string TaskSubject(std::string_view queue, std::string_view kind) {
  return "tq.task." + EncodeToken(queue) + "." + EncodeToken(kind);
}

std::string TaskFilter(std::string_view queue) { return "tq.task." + EncodeToken(queue) + ".>"; }

std::string OutSubject(std::string_view reply, uint64_t batch) {
  return "tq.out." + EncodeToken(reply) + "." + std::to_string(batch);
}

std::string LaneConsumer(std::string_view queue, std::string_view kind) {
  std::string name = EncodeToken(queue) + "_-" + EncodeToken(kind);
  if (name.size() <= kMaxConsumerName) return name;
  const std::string subject = TaskSubject(queue, kind);
  unsigned char hash[16];
  crypto_generichash(hash, sizeof hash, reinterpret_cast<const unsigned char*>(subject.data()),
                     subject.size(), nullptr, 0);
  std::string hashed = "h_-";
  for (const unsigned char b : hash) {
    hashed += kHex[b >> 4];
    hashed += kHex[b & 0xF];
  }
  return hashed;
}

}  // namespace taskq
