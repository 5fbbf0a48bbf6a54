#!/usr/bin/python3
"""The Python package's rows of make bench: a Python producer's put_many into
the C++ master, and one Python worker process (taskq.Worker, jobs=1) running
square tasks. Prints one JSON line.

  /usr/bin/python3 bench/python_bench.py BUILD_DIR [--tasks N]
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import taskq  # noqa: E402

KEY = b"taskq-bench"
WORKER = ("import sys, taskq; sys.exit(taskq.Worker(sys.argv[1], sys.argv[2].encode(), "
          "handlers={'square': lambda n: n * n}).run())")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--tasks", type=int, default=1000000)
    a = ap.parse_args()
    n = a.tasks
    with taskq.serve(0, KEY, bind="127.0.0.1",
                     binary=os.path.join(a.build, "master", "task_master")) as m, \
            taskq.connect(m.address, KEY) as c:
        t = time.perf_counter()
        ids = c.queue("tasks").put_many(("square", i) for i in range(n))
        put_s = time.perf_counter() - t
        assert len(ids) == n
        env = dict(os.environ, PYTHONPATH=os.path.join(HERE, "..", "python"))
        t = time.perf_counter()
        w = subprocess.Popen([sys.executable, "-c", WORKER, m.address, KEY.decode()], env=env)
        got, bad = 0, 0
        while got < n:
            for r in c.queue("results").get_many(65536, timeout=60):
                got += 1
                bad += r.value != r.arg * r.arg
        worker_s = time.perf_counter() - t
        m.stop()
        w.wait(30)
    if bad:
        sys.exit(f"python_bench: {bad} wrong results")
    print(json.dumps({"tasks": n, "put_many_tasks_per_s": round(n / put_s),
                      "worker_tasks_per_s": round(n / worker_s)}))


if __name__ == "__main__":
    main()
