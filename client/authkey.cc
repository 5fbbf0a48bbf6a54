#include "client/authkey.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "proto/keys.h"

namespace taskq {
namespace {

Result<std::string> FindAuthkey(const std::string& flag_value, const std::string& file_path) {
  if (!flag_value.empty()) return flag_value;
  if (!file_path.empty()) {
    std::ifstream in(file_path);
    if (!in)
      return Status::Error(Code::kInvalid, "cannot read the authkey file " + file_path + ": " +
                                               std::strerror(errno));
    std::string key;
    std::getline(in, key);
    while (!key.empty() && (key.back() == '\r' || key.back() == '\n')) key.pop_back();
    if (key.empty())
      return Status::Error(Code::kInvalid,
                           "the authkey file " + file_path + " starts with an empty line");
    return key;
  }
  if (const char* env = std::getenv("TASKQ_AUTHKEY"); env && *env) return std::string(env);
  return Status::Error(
      Code::kInvalid,
      "no authkey: pass --authkey KEY, set TASKQ_AUTHKEY, or use --authkey-file FILE");
}

}  // namespace

Result<std::string> ResolveAuthkey(const std::string& flag_value, const std::string& file_path) {
  Result<std::string> key = FindAuthkey(flag_value, file_path);
  if (!key.ok() || !IsCredential(*key)) return key;
  if (Status s = CheckCredential(*key); !s.ok()) return s;
  return key;
}

}  // namespace taskq
