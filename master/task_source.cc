#include "master/task_source.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <iostream>
#include <random>

#include "proto/json.h"
#include "proto/msgpack_reader.h"

namespace taskq {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

class Squares : public TaskSource {
 public:
  Squares(uint64_t count, std::function<void(int64_t)> announce)
      : count_(count), left_(count), announce_(std::move(announce)), rng_(randombytes_random()),
        pick_(0, 10000) {}
  uint64_t size_hint() const override { return count_; }
  bool Next(TaskSpec* task) override {
    if (left_ == 0) return false;
    --left_;
    const int64_t n = pick_(rng_);
    if (announce_) announce_(n);
    *task = TaskSpec{"square", Value::Int(n), {}};
    return true;
  }

 private:
  uint64_t count_;
  uint64_t left_;
  std::function<void(int64_t)> announce_;
  std::mt19937 rng_;
  std::uniform_int_distribution<int64_t> pick_;
};

// Reads lines from files in turn ("-": standard input), numbering them.
class Lines {
 public:
  explicit Lines(std::vector<std::string> files) : files_(std::move(files)) {}
  // Checks that every file can be read now, with the OS's reason if not
  // (a directory opens, and then reads as no lines at all: said here).
  Status OpenAll(const char* flag) {
    for (const std::string& f : files_) {
      if (f == "-") continue;
      const int fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        return Status::Error(Code::kInvalid, std::string(flag) + ": cannot read " + f + ": " +
                                                 std::strerror(errno));
      struct stat st {};
      const bool dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
      close(fd);
      if (dir)
        return Status::Error(Code::kInvalid, std::string(flag) + ": " + f +
                                                 " is a directory; give a file with one line "
                                                 "per task (or - for standard input)");
    }
    return Status::Ok();
  }
  // The next line and where it is ("urls.txt:12"); false at the end.
  bool Next(std::string* line, std::string* where) {
    for (;;) {
      if (!in_) {
        if (next_ == files_.size()) return false;
        name_ = files_[next_++];
        number_ = 0;
        if (name_ == "-") {
          in_ = &std::cin;
        } else {
          file_.close();
          file_.clear();
          file_.open(name_);
          in_ = &file_;
        }
      }
      if (std::getline(*in_, *line)) {
        ++number_;
        *where = (name_ == "-" ? std::string("stdin") : name_) + ":" + std::to_string(number_);
        return true;
      }
      in_ = nullptr;
    }
  }

 private:
  std::vector<std::string> files_;
  std::size_t next_ = 0;
  std::string name_;
  uint64_t number_ = 0;
  std::ifstream file_;
  std::istream* in_ = nullptr;
};

class Urls : public TaskSource {
 public:
  Urls(std::vector<std::string> urls, std::vector<std::string> files, LineError on_error)
      : urls_(std::move(urls)), lines_(std::move(files)), on_error_(std::move(on_error)) {}
  Status Open() { return lines_.OpenAll("--download"); }
  bool Next(TaskSpec* task) override {
    if (next_url_ < urls_.size()) {
      *task = TaskSpec{"download", Value::Str(urls_[next_url_++]), {}};
      return true;
    }
    std::string line, where;
    while (lines_.Next(&line, &where)) {
      const std::string_view url = Trim(line);
      if (url.empty() || url.front() == '#') continue;
      if (url.find_first_of(" \t") != std::string_view::npos) {
        ++skipped_;
        on_error_(where, "a URL has no spaces (encode them as %20)");
        continue;
      }
      *task = TaskSpec{"download", Value::Str(url), {}};
      return true;
    }
    return false;
  }

 private:
  std::vector<std::string> urls_;
  std::size_t next_url_ = 0;
  Lines lines_;
  LineError on_error_;
};

class TaskFile : public TaskSource {
 public:
  TaskFile(const std::string& file, LineError on_error)
      : lines_({file}), on_error_(std::move(on_error)) {}
  Status Open() { return lines_.OpenAll("--tasks"); }
  bool Next(TaskSpec* task) override {
    std::string line, where, error;
    while (lines_.Next(&line, &where)) {
      if (ParseTaskLine(line, task, &error)) return true;
      if (error.empty()) continue;
      ++skipped_;
      on_error_(where, error);
    }
    return false;
  }

 private:
  Lines lines_;
  LineError on_error_;
};

bool ParseJsonTask(std::string_view line, TaskSpec* task, std::string* error) {
  Result<Value> v = ParseJson(line);
  if (!v.ok()) {
    *error = v.status().message();
    return false;
  }
  MsgpackReader r(v->packed());
  uint32_t n;
  if (!r.ReadMapHeader(&n)) {
    *error = "a JSON task is an object";
    return false;
  }
  bool has_kind = false;
  *task = TaskSpec{};
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view key, s, raw;
    r.ReadStr(&key);  // JSON object keys are strings
    if (key == "kind") {
      if (!r.ReadStr(&s) || s.empty()) {
        *error = "\"kind\" must be a non-empty string";
        return false;
      }
      task->kind = std::string(s);
      has_kind = true;
    } else if (key == "timeout") {
      double seconds;
      int64_t whole;
      if (r.ReadDouble(&seconds)) {
      } else if (r.ReadInt(&whole)) {
        seconds = static_cast<double>(whole);
      } else {
        *error = "\"timeout\" must be a number of seconds";
        return false;
      }
      task->timeout = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
    } else {
      r.Skip(&raw);
      if (key == "arg") task->arg = Value::FromTrusted(raw);
    }
  }
  if (!has_kind) *error = "a JSON task needs \"kind\"";
  return has_kind;
}

// The built-in kinds all need an argument: a line without one is an input
// mistake, better told with its line number now than as a failed task later.
bool HasNeededArg(const TaskSpec& task, std::string* error) {
  const bool needs = task.kind == "square" || task.kind == "sleep" || task.kind == "download";
  if (!needs || !task.arg.IsNil()) return true;
  const char* example = task.kind == "square"  ? "square 12"
                        : task.kind == "sleep" ? "sleep 250"
                                               : "download https://example.com/a.jpg";
  *error = "a " + task.kind + " task needs an argument (e.g. " + example + ")";
  return false;
}

}  // namespace

bool ParseTaskLine(std::string_view line, TaskSpec* task, std::string* error) {
  error->clear();
  line = Trim(line);
  if (line.empty() || line.front() == '#') return false;
  if (line.front() == '{') return ParseJsonTask(line, task, error) && HasNeededArg(*task, error);
  const std::size_t space = line.find_first_of(" \t");
  const std::string_view kind = line.substr(0, space);
  const std::string_view arg =
      space == std::string_view::npos ? std::string_view() : Trim(line.substr(space + 1));
  *task = TaskSpec{std::string(kind), Value(), {}};
  if (arg.empty()) return HasNeededArg(*task, error);
  Result<Value> v = ParseJson(arg);
  task->arg = v.ok() ? *v : Value::Str(arg);
  return true;
}

std::unique_ptr<TaskSource> SquareSource(uint64_t count, std::function<void(int64_t)> announce) {
  return std::make_unique<Squares>(count, std::move(announce));
}

Result<std::unique_ptr<TaskSource>> UrlSource(std::vector<std::string> urls,
                                              std::vector<std::string> files, LineError on_error) {
  auto s = std::make_unique<Urls>(std::move(urls), std::move(files), std::move(on_error));
  TASKQ_TRY(s->Open());
  return std::unique_ptr<TaskSource>(std::move(s));
}

Result<std::unique_ptr<TaskSource>> TaskFileSource(const std::string& file, LineError on_error) {
  auto s = std::make_unique<TaskFile>(file, std::move(on_error));
  TASKQ_TRY(s->Open());
  return std::unique_ptr<TaskSource>(std::move(s));
}

Result<std::unique_ptr<TaskSource>> MakeTaskSource(const JobTasks& t, const std::string& program,
                                                   bool announce_squares, std::ostream& out,
                                                   std::ostream& err) {
  LineError on_error = [&err, program](const std::string& where, const std::string& what) {
    err << program << ": " << where << ": " << what << " (skipped)\n";
  };
  if (!t.download.empty() || !t.urls.empty()) return UrlSource(t.urls, t.download, on_error);
  if (!t.tasks.empty()) return TaskFileSource(t.tasks, on_error);
  return SquareSource(t.square, [&out, announce_squares](int64_t n) {
    if (announce_squares) out << "Put task " << n << "...\n";
  });
}

std::unique_ptr<TaskSource> NoTaskSource() {
  struct None : TaskSource {
    bool Next(TaskSpec*) override { return false; }
  };
  return std::make_unique<None>();
}

}  // namespace taskq
