#!/usr/bin/env python3
"""The tutorial's task_worker.py on taskq's native API: take square tasks,
compute them, report the results, until the master exits. Tasks are leased:
if this worker dies, another one gets them.

    TASKQ_AUTHKEY=abc python3 task_worker.py [HOST:PORT] [--jobs N]
"""
import os, sys
import taskq

server = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1][0] != "-" else "127.0.0.1:5000"
jobs = int(sys.argv[sys.argv.index("--jobs") + 1]) if "--jobs" in sys.argv else 1


def square(n):
    print(f"run task {n} * {n}...\n", end="", flush=True)  # one write: threads print too
    return n * n


print(f"Connect to server {server}...", flush=True)
code = taskq.Worker(server, os.environ.get("TASKQ_AUTHKEY", "abc").encode(),
                    handlers={"square": square}, jobs=jobs).run()
print("worker exit.")
sys.exit(code)
