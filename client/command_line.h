// What task_master and task_worker do alike with their command lines (CLI11,
// header-only: only the programs that parse flags include it).
#ifndef TASKQ_CLIENT_COMMAND_LINE_H_
#define TASKQ_CLIENT_COMMAND_LINE_H_

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <optional>
#include <string>

#include "client/authkey.h"
#include "client/exit_codes.h"

namespace taskq {

// Seconds as given on the command line (0.5) to milliseconds.
inline std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

// A number of seconds, checked with a sentence CLI11's ranges do not give
// ("--timeout: must be > 0 seconds, not 0" rather than a 300-digit bound).
// positive: 0 is refused; otherwise 0 is allowed (it means "none" or "for ever").
inline CLI::Validator Seconds(bool positive) {
  return CLI::Validator(
      [positive](std::string& text) -> std::string {
        double v = 0;
        std::size_t used = 0;
        try {
          v = std::stod(text, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != text.size() || text.empty() || v != v)
          return "must be a number of seconds, not '" + text + "'";
        if (positive ? v <= 0 : v < 0)
          return std::string(positive ? "must be > 0" : "must be >= 0") + " seconds, not " + text;
        return "";
      },
      positive ? "SECONDS>0" : "SECONDS");
}

// The key flags, the same in both programs.
struct AuthkeyFlags {
  std::string key, file;

  void AddTo(CLI::App& app) {
    app.add_option(
        "--authkey", key,
        "shared secret (prefer TASKQ_AUTHKEY or --authkey-file: other users can see command lines)");
    app.add_option("--authkey-file", file, "read the authkey from the first line of FILE");
  }
  // The key (flag, then file, then TASKQ_AUTHKEY), or the exit code after
  // saying on stderr why there is none.
  std::optional<int> Resolve(const char* program, std::string* out) const {
    Result<std::string> k = ResolveAuthkey(key, file);
    if (!k.ok()) {
      std::cerr << program << ": " << k.status().message() << "\n";
      return kExitUsage;
    }
    *out = *k;
    return std::nullopt;
  }
};

// Parses argv. Returns the exit code when the program should stop here:
// 0 after --help or --version, kExitUsage after a bad flag (one line on
// stderr, never CLI11's whole help).
inline std::optional<int> ParseFlags(CLI::App& app, int argc, char** argv, const char* program) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << program << ": " << e.what() << " (see --help)\n";
    return kExitUsage;
  }
  return std::nullopt;
}

}  // namespace taskq

#endif  // TASKQ_CLIENT_COMMAND_LINE_H_
