#include "cli/jobs.h"

#include <sodium.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <optional>

#include "client/exit_codes.h"
#include "master/job.h"
#include "master/job_report.h"
#include "master/outcome_file.h"
#include "master/status_report.h"
#include "master/task_source.h"

namespace taskq {
namespace {

// Random ids: 10 characters of this alphabet (no i, l, o, u: nothing to
// misread on a projector), 50 bits: two submitters never pick the same.
constexpr std::string_view kIdAlphabet = "0123456789abcdefghjkmnpqrstvwxyz";
constexpr int kIdLength = 10;
// How long a stats request may go unanswered (Client::Stats's default).
constexpr std::chrono::milliseconds kStatsWait{30000};

std::string RandomJobId() {
  std::string id;
  for (int i = 0; i < kIdLength; ++i)
    id += kIdAlphabet[randombytes_uniform(static_cast<uint32_t>(kIdAlphabet.size()))];
  return id;
}

std::string ReplyQueue(const std::string& id) { return std::string(kJobQueuePrefix) + id; }

// A job's queue is in use while it holds outcomes or is owed some.
bool InUse(const QueueStats* q) { return q && Outstanding(*q) > 0; }

int Usage(const std::string& what) {
  std::cerr << "taskq: " << what << "\n";
  return kExitUsage;
}

// The command that collects the rest of job id, for the messages.
std::string ResultsCommand(const std::string& id, const ServerFlags& server,
                           const std::string& results) {
  std::string c = "taskq results " + id + " " + server.Flag();
  if (!results.empty() && results != "-") c += " --results " + results;
  return c;
}

// What both subcommands run: the job over a TCP client, outcomes leased and
// acknowledged only once written (and synced) to --results FILE, or shown.
struct JobRun {
  ReportOptions report;
  JobOptions job;
  std::string results;
  bool append = false;  // taskq results: the file goes on where it stopped
  std::string banner;   // said once the results file is open (the job's id first)
};

int RunJob(Client& client, JobRun r, TaskSource& source, std::ostream& words,
           uint64_t* put = nullptr) {
  OutcomeFile record;
  if (!r.results.empty() && r.results != "-") {
    if (Status s = record.OpenForJob(r.results, r.append, "taskq", std::cerr); !s.ok())
      return Usage(s.message());
    r.job.record = &record;
  }
  if (!r.banner.empty()) words << r.banner << std::endl;
  StatusLine status(std::cerr, isatty(STDERR_FILENO));
  JobReport report(r.report, std::cout, std::cerr, status);
  Job job(client, r.job, report, words, std::cerr);
  const int code = job.Run(source);
  if (put) *put = job.tasks_put();
  return code;
}

}  // namespace

CLI::App* AddSubmit(CLI::App& app, SubmitFlags& f) {
  CLI::App* c = app.add_subcommand(
      "submit", "gives a job to a serving master and collects its outcomes (or, with --detach, "
                "leaves that for taskq results)");
  f.server.AddTo(c);
  c->add_option("urls", f.urls, "URLs to download (one download task each)");
  c->add_option("--square", f.square, "N square tasks of random numbers (the tutorial's job)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  c->add_option("--download", f.download, "a file of URLs, one per line ('-': standard input)");
  c->add_option("--tasks", f.tasks,
                "a file of tasks, one per line: KIND ARG or {\"kind\": ..., \"arg\": ...}");
  c->add_option("--job", f.job,
                "the job's id (letters, digits, _ and -, up to 64); default: 10 random "
                "characters")
      ->each([&f](const std::string&) { f.job_given = true; });
  c->add_option("--queue", f.queue, "the queue the workers take the tasks from")
      ->default_val("tasks");
  c->add_option("--results", f.results,
                "every outcome as a JSON line in FILE ('-': on stdout); kept before the master "
                "forgets it");
  c->add_flag("--detach", f.detach,
              "put the tasks, print the job id on stdout and exit; taskq results collects");
  c->add_option("--timeout", f.timeout_s,
                "give up after this many seconds in which no outcome came and no worker held a "
                "task (the tasks stay: taskq results collects them later)")
      ->default_val(10)
      ->check(Seconds(true));
  c->add_option("--workers", f.workers, "wait for N workers before putting the tasks")
      ->check(CLI::Range(0, 100000));
  c->add_flag("--quiet", f.quiet, "no line per outcome");
  c->add_flag("--json", f.json, "the summary as one JSON object on stdout");
  c->footer(
      "Several jobs, from several people, may run at once on one master: each has its own id\n"
      "and its outcomes go to its own queue, job.ID (docs/PROTOCOL.md 7.10). The job's id is\n"
      "said first; if taskq stops (Ctrl-C, --timeout, a lost connection), the tasks go on and\n"
      "taskq results ID collects the rest.\n\n"
      "With a submitter key (taskq keys) it runs as with the authkey; a worker key cannot\n"
      "submit (exit 7).\n\n"
      "Exit codes: as task_master's job: 0 done, 2 bad input, 3 wrong authkey, 4 master not\n"
      "reached, 5 no progress for --timeout, 6 some tasks failed, 7 not allowed with this\n"
      "key, 130 interrupted.\n\n"
      "Examples:\n"
      "  taskq submit --server teacher-laptop --square 20\n"
      "  taskq submit --server 127.0.0.1:5000 --download urls.txt --results out.jsonl\n"
      "  JOB=$(taskq submit --server 127.0.0.1:5000 --tasks tasks.txt --detach)\n"
      "  taskq results $JOB --server 127.0.0.1:5000 --results out.jsonl");
  return c;
}

CLI::App* AddResults(CLI::App& app, ResultsFlags& f) {
  CLI::App* c = app.add_subcommand(
      "results", "collects the outcomes of a job (taskq submit --detach, or one that stopped)");
  f.server.AddTo(c);
  c->add_option("job", f.job, "the job's id, as taskq submit printed it")->required();
  c->add_option("--results", f.results,
                "append every outcome as a JSON line to FILE ('-': on stdout); run again with "
                "the same FILE after a kill, each outcome is written once");
  c->add_option("--timeout", f.timeout_s,
                "give up after this many seconds in which no outcome came and no worker held a "
                "task")
      ->default_val(10)
      ->check(Seconds(true));
  c->add_flag("--quiet", f.quiet, "no line per outcome");
  c->add_flag("--json", f.json, "the summary as one JSON object on stdout");
  c->footer(
      "It ends when the job has no outcome left in the master and no task still to run. An\n"
      "outcome is removed from the master only once written to --results FILE (or shown).\n"
      "Its summary and exit code are about the outcomes it collects; FILE keeps them all.\n\n"
      "A submitter key (taskq keys) collects any job whose id it is given: the id is what\n"
      "keeps a job's outcomes to those who know it.\n\n"
      "Exit codes: 0 done, 2 unknown job id or bad flags, 3 wrong authkey, 4 master not\n"
      "reached, 5 no progress for --timeout, 6 some tasks failed, 7 not allowed with this\n"
      "key, 130 interrupted.\n\n"
      "Examples:\n"
      "  taskq results k3f9x2ab7m --server 127.0.0.1:5000\n"
      "  taskq results squares --server teacher-laptop --results squares.jsonl");
  return c;
}

int Submit(const SubmitFlags& f) {
  const bool urls = !f.download.empty() || !f.urls.empty();
  const int kinds = (f.square > 0) + urls + !f.tasks.empty();
  if (kinds == 0)
    return Usage(
        "submit: give the job's tasks: --square N, --download FILE, --tasks FILE or URLs "
        "(taskq submit --help)");
  if (kinds > 1)
    return Usage("submit: give one kind of tasks: --square, --download/URLs or --tasks, not "
                 "several");
  if (f.job_given && f.job.empty())
    return Usage("submit: --job needs an id (or leave --job out for a random one)");
  if (!f.job.empty() && !ValidJobId(f.job))
    return Usage("submit: --job '" + f.job +
                 "': a job id is 1 to 64 letters, digits, '_' or '-', not starting with '-'");
  if (f.queue.empty() || f.queue.size() > 255)
    return Usage("submit: --queue must be 1 to 255 bytes");
  if (f.detach && !f.results.empty())
    return Usage("submit: --detach leaves the outcomes in the master; give --results to taskq "
                 "results, which collects them");
  if (Status s = CheckResultsPath(f.results); !s.ok()) return Usage(s.message());
  // A new job starts its file empty: outcomes already in it (another job's,
  // collected and gone from the master) must not be lost to a reused name.
  if (std::error_code ec; !f.results.empty() && f.results != "-" &&
                          std::filesystem::file_size(f.results, ec) > 0 && !ec)
    return Usage("submit: --results " + f.results +
                 " already holds outcomes; give a new file (taskq results ID --results FILE "
                 "adds to its own job's file)");
  // Words for people: stdout, unless stdout carries the id or JSON.
  std::ostream& words = f.detach || f.json || f.results == "-" ? std::cerr : std::cout;
  const bool announce = !f.quiet && !f.json && f.square <= JobReport::kPerTaskLines;
  Result<std::unique_ptr<TaskSource>> source = MakeTaskSource(
      JobTasks{f.square, f.download, f.urls, f.tasks}, "taskq", announce, words, std::cerr);
  if (!source.ok()) return Usage(source.status().message());

  Result<std::unique_ptr<Client>> c = Open(f.server, "taskq-submit");
  if (!c.ok()) return Fail(c.status());
  // Named, so that a submitter's key, which sees only its own job queues,
  // sees whether --job ID is in use.
  Result<StatsOk> st = (*c)->Stats(kStatsWait, f.job.empty() ? "" : ReplyQueue(f.job));
  if (!st.ok()) return Fail(st.status());
  std::string id = f.job;
  if (!id.empty() && InUse(QueueOf(*st, ReplyQueue(id))))
    return Usage("submit: job " + id + " is still running on the master (outcomes or tasks in " +
                 ReplyQueue(id) + "); pick another --job, or collect it: " +
                 ResultsCommand(id, f.server, ""));
  // A named job may reuse the queue of a finished one; a random id is new.
  if (f.job.empty())
    do id = RandomJobId();
    while (QueueOf(*st, ReplyQueue(id)));

  const std::string later = ResultsCommand(id, f.server, f.results);
  JobRun r;
  r.banner = "Job " + id + " on " + (*c)->server() + ": tasks into queue '" + f.queue +
             "', outcomes into '" + ReplyQueue(id) + "'" +
             (f.detach ? "" : " (if this stops: " + later + ")");
  r.report.quiet = f.quiet;
  r.report.json = f.json;
  r.report.results_stdout = f.results == "-";
  r.results = f.results;
  r.job.queue = f.queue;
  r.job.reply_to = ReplyQueue(id);
  r.job.program = "taskq";
  r.job.name = "job " + id;
  r.job.resume_hint = "the tasks go on; collect their outcomes with: " + later;
  r.job.timeout = Millis(f.timeout_s);
  r.job.lease = true;
  r.job.fsync = true;
  r.job.wait_workers = f.workers;
  r.job.put_only = f.detach;
  uint64_t put = 0;
  const int code = RunJob(**c, r, **source, words, &put);
  if (!f.detach || code != kExitOk) return code;
  std::cout << id << std::endl;
  std::cerr << "Submitted job " << id << ": " << put << " task(s)"
            << ((*source)->skipped() ? " (" + std::to_string((*source)->skipped()) +
                                           " input line(s) skipped, see above)"
                                     : "")
            << ". Collect the outcomes with: " << later << std::endl;
  return (*source)->skipped() ? kExitUsage : kExitOk;
}

int Results(const ResultsFlags& f) {
  if (!ValidJobId(f.job))
    return Usage("results: '" + f.job +
                 "' is not a job id (1 to 64 letters, digits, '_' or '-', as taskq submit "
                 "printed it)");
  if (Status s = CheckResultsPath(f.results); !s.ok()) return Usage(s.message());
  Result<std::unique_ptr<Client>> c = Open(f.server, "taskq-results");
  if (!c.ok()) return Fail(c.status());
  Result<StatsOk> st = (*c)->Stats(kStatsWait, ReplyQueue(f.job));
  if (!st.ok()) return Fail(st.status());
  const QueueStats* q = QueueOf(*st, ReplyQueue(f.job));
  if (!q)
    return Usage("results: the master at " + (*c)->server() + " has no job " + f.job +
                 " (no queue " + ReplyQueue(f.job) +
                 "): a mistyped id, another master, or a master restarted without --data-dir");
  std::ostream& words = f.json || f.results == "-" ? std::cerr : std::cout;
  if (!InUse(q)) {
    words << "Job " << f.job << ": nothing left to collect (every outcome was collected)"
          << std::endl;
    return kExitOk;
  }
  JobRun r;
  r.report.quiet = f.quiet;
  r.report.json = f.json;
  r.report.results_stdout = f.results == "-";
  r.results = f.results;
  r.append = true;
  r.job.reply_to = ReplyQueue(f.job);
  r.job.program = "taskq";
  r.job.name = "job " + f.job;
  r.job.resume_hint = "collect the rest with: " + ResultsCommand(f.job, f.server, f.results);
  r.job.timeout = Millis(f.timeout_s);
  r.job.lease = true;
  r.job.fsync = true;
  r.job.resume = true;
  r.job.collect_only = true;
  std::unique_ptr<TaskSource> none = NoTaskSource();
  return RunJob(**c, r, *none, words);
}

}  // namespace taskq
