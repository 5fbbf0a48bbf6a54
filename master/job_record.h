// JobRecord: what the data dir says about task_master's own job
// (DIR/job): which job it is, where its outcomes go, and whether it
// finished. It lets the same command, run again, resume the job (or say it
// already finished) instead of putting every task again, and refuses to
// mix another job's tasks into it.
//
// A small text file, replaced whole (write, fsync, rename, fsync the
// directory), so a crash leaves the old version or the new one:
//
//   taskq job 1
//   job: --tasks /home/me/tasks.txt
//   results: /home/me/out.jsonl
//   state: running
//
// Thread: the job's thread.
#ifndef TASKQ_MASTER_JOB_RECORD_H_
#define TASKQ_MASTER_JOB_RECORD_H_

#include <optional>
#include <string>

#include "proto/status.h"

namespace taskq {

struct JobRecord {
  std::string job;      // the job's flags, as Describe gives them
  std::string results;  // the results file, an absolute path
  bool finished = false;

  // DIR/job; nullopt when there is none.
  [[nodiscard]] static Result<std::optional<JobRecord>> Load(const std::string& dir);
  [[nodiscard]] Status Save(const std::string& dir) const;
  // Removes DIR/job (no error when there is none).
  [[nodiscard]] static Status Remove(const std::string& dir);
};

}  // namespace taskq

#endif  // TASKQ_MASTER_JOB_RECORD_H_
