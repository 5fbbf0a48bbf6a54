#include "worker/file_names.h"

#include <fcntl.h>
#include <stdio.h>

#include <cerrno>
#include <cstring>

namespace taskq {
namespace {

constexpr std::size_t kMaxName = 200;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 && HexDigit(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The path part of a URL: after "scheme://authority", before '?' or '#'.
std::string_view PathOf(std::string_view url) {
  std::size_t start = 0;
  if (auto scheme = url.find("://"); scheme != std::string_view::npos) {
    start = url.find('/', scheme + 3);
    if (start == std::string_view::npos) return {};
  }
  std::string_view path = url.substr(start);
  return path.substr(0, path.find_first_of("?#"));
}

// Splits name into stem and extension (".jpg"), for numbering clashes.
std::pair<std::string, std::string> StemAndExtension(const std::string& name) {
  const std::size_t dot = name.rfind('.');
  if (dot == std::string::npos || dot == 0 || name.size() - dot > 16) return {name, ""};
  return {name.substr(0, dot), name.substr(dot)};
}

}  // namespace

std::string SafeFileName(std::string_view url) {
  std::string_view path = PathOf(url);
  path = path.substr(path.rfind('/') == std::string_view::npos ? 0 : path.rfind('/') + 1);
  std::string name = PercentDecode(path);
  // Separators that were encoded ("..%2F..%2Fx") separate too: the name is
  // what follows the last one.
  if (const std::size_t sep = name.find_last_of("/\\"); sep != std::string::npos)
    name.erase(0, sep + 1);
  for (char& c : name) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '_';
  }
  const auto trim = [](char c) { return c == '.' || c == ' '; };
  while (!name.empty() && trim(name.front())) name.erase(name.begin());
  while (!name.empty() && trim(name.back())) name.pop_back();
  if (name.size() > kMaxName) {
    auto [stem, ext] = StemAndExtension(name);
    name = stem.substr(0, kMaxName - ext.size()) + ext;
  }
  return name.empty() ? "download" : name;
}

std::string NumberedName(const std::string& name, int n) {
  if (n == 0) return name;
  auto [stem, ext] = StemAndExtension(name);
  return stem + " (" + std::to_string(n) + ")" + ext;
}

Result<std::string> RenameUnique(const std::string& from, const std::string& dir,
                                 const std::string& name) {
  for (int n = 0; n < kMaxNumberedNames; ++n) {
    const std::string path = dir + "/" + NumberedName(name, n);
    // RENAME_NOREPLACE: atomic, and never over a file another download (or
    // anyone) put there meanwhile.
    if (renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0)
      return path;
    if (errno != EEXIST)
      return Status::Error(Code::kIo, "cannot save " + path + ": " + std::strerror(errno));
  }
  // kInvalid, not kIo: the task's name clashes too often, nothing is wrong
  // with the directory (the caller tells the two apart).
  return Status::Error(Code::kInvalid, "cannot find a free name for " + name + " in " + dir +
                                           " (" + std::to_string(kMaxNumberedNames) +
                                           " files of that name are there)");
}

}  // namespace taskq
