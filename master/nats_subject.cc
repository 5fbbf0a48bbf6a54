#include "master/nats_subject.h"

#include <sodium.h>

#include "proto/limits.h"

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

// name, or "h_-" and a hash of subject when name is too long.
std::string ShortName(std::string name, const std::string& subject) {
  if (name.size() <= kMaxConsumerName) return name;
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

Status CheckName(std::string_view what, std::string_view name) {
  if (!name.empty() && name.size() <= kMaxNameBytes) return Status::Ok();
  return Status::Error(Code::kInvalid, std::string(what) + " of " + std::to_string(name.size()) +
                                           " bytes: it must have 1 to " +
                                           std::to_string(kMaxNameBytes));
}

std::string TaskSubject(std::string_view queue, std::string_view kind) {
  return "tq.task." + EncodeToken(queue) + "." + EncodeToken(kind);
}

std::string TaskFilter(std::string_view queue) { return "tq.task." + EncodeToken(queue) + ".>"; }

std::string OutSubject(std::string_view reply, uint64_t batch) {
  return "tq.out." + EncodeToken(reply) + "." + std::to_string(batch);
}

std::string OutFilter(std::string_view reply) { return "tq.out." + EncodeToken(reply) + ".>"; }

std::optional<std::pair<std::string, std::string>> ParseTaskSubject(std::string_view subject) {
  constexpr std::string_view kPrefix = "tq.task.";
  if (subject.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  subject.remove_prefix(kPrefix.size());
  const std::size_t dot = subject.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  std::optional<std::string> queue = DecodeToken(subject.substr(0, dot));
  std::optional<std::string> kind = DecodeToken(subject.substr(dot + 1));
  if (!queue || !kind) return std::nullopt;
  return std::make_pair(std::move(*queue), std::move(*kind));
}

std::string LaneConsumer(std::string_view queue, std::string_view kind) {
  return ShortName(EncodeToken(queue) + "_-" + EncodeToken(kind), TaskSubject(queue, kind));
}

std::string OutConsumer(std::string_view reply) {
  return ShortName(EncodeToken(reply), OutFilter(reply));
}

}  // namespace taskq
