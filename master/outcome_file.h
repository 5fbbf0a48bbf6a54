// OutcomeFile: the job's results file (--results FILE, or DIR/job-results.jsonl
// with --data-dir), one JSON line per outcome, and the job's durable record
// of which outcomes it holds.
//
// The job takes outcomes from the master leased, writes them here, calls
// Sync, and only then acknowledges them (so the master forgets them). A
// crash at any moment therefore leaves every outcome in the master, in this
// file, or in both; a resumed job reads the ids already here (Has) and
// writes each outcome once.
//
// Writes go straight to the file descriptor at Sync (write() survives a
// kill -9 of the process); with fsync they also reach the disk.
//
// Thread: the job's thread.
#ifndef TASKQ_MASTER_OUTCOME_FILE_H_
#define TASKQ_MASTER_OUTCOME_FILE_H_

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "client/client.h"

namespace taskq {

class OutcomeFile {
 public:
  OutcomeFile() = default;
  OutcomeFile(const OutcomeFile&) = delete;
  OutcomeFile& operator=(const OutcomeFile&) = delete;
  ~OutcomeFile();

  // Opens path. resume: keeps what is there, cuts off a last line that a
  // crash left without its newline, and reads the ids (and failures) of the
  // lines; otherwise starts the file empty.
  [[nodiscard]] Status Open(const std::string& path, bool resume);

  // Open, and the words for what it found: a cut-off last line, lines
  // that are not outcomes ("PROGRAM: ..." on err).
  [[nodiscard]] Status OpenForJob(const std::string& path, bool resume, const std::string& program,
                                  std::ostream& err);

  // True when the file held this outcome when it was opened. (Outcomes
  // written since are not looked up: within one run the master hands each
  // outcome to the job once, as the job's inproc connection never breaks.)
  bool Has(uint64_t id) const;
  uint64_t count() const { return ids_.size(); }  // distinct outcomes found at Open
  uint64_t failed() const { return failed_; }     // of those, failures
  uint64_t cut_bytes() const { return cut_bytes_; }
  uint64_t unreadable() const { return unreadable_; }  // lines that are not outcome lines

  // Buffers one outcome line (OutcomeJson).
  void Add(const Item& item);
  // Writes what is buffered; with fsync, also waits for the disk.
  [[nodiscard]] Status Sync(bool fsync);
  const std::string& path() const { return path_; }

 private:
  Status ReadExisting();

  std::string path_;
  int fd_ = -1;
  std::vector<uint64_t> ids_;  // sorted, distinct
  uint64_t failed_ = 0;
  uint64_t cut_bytes_ = 0;
  uint64_t unreadable_ = 0;
  std::string pending_;
};

// --results FILE must be writable: told before the job starts, with the
// OS's reason, rather than after the master listened or the tasks were put.
// "" and "-" (standard output) are fine.
[[nodiscard]] Status CheckResultsPath(const std::string& path);

}  // namespace taskq

#endif  // TASKQ_MASTER_OUTCOME_FILE_H_
