#!/usr/bin/env python3
"""The tutorial's task_master.py on taskq's native API: start a master (or
use one: --server HOST:PORT), put ten random numbers, collect their squares.
Workers: task_worker.py, or the C++ task_worker, in any mix.

    TASKQ_AUTHKEY=abc python3 task_master.py [--port 5000 | --server HOST:PORT]
"""
import argparse, os, random, sys
import taskq

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, default=5000, help="start a master on this port")
p.add_argument("--server", help="use the master at HOST:PORT instead of starting one")
a = p.parse_args()
key = os.environ.get("TASKQ_AUTHKEY", "abc").encode()
try:
    server = None if a.server else taskq.serve(a.port, key)
    m = taskq.connect(a.server or server.address, key)
except taskq.TaskqError as e:  # no task_master program, a wrong key, no master
    sys.exit(f"task_master.py: {e}")
with m:
    task, result = m.queue("tasks"), m.queue("results")
    for i in range(10):
        n = random.randint(0, 10000)
        print(f"Put task {n}...")
        task.put("square", n)
    print("Try get results...", flush=True)
    for i in range(10):
        r = result.get(timeout=10)  # queue.Empty after 10 s
        print(f"Result: {r.arg} * {r.arg} = {r.value}")
if server:
    server.stop()  # tells the workers to exit
print("master exit.")
