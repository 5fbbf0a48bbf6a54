"""A worker for the tests: kind "work", arg [n, seconds]: prints "start n",
sleeps, returns n * n. Usage: slow_worker.py SERVER JOBS HEARTBEAT_S [processes]."""
import sys
import time

import taskq


def work(arg):
    n, seconds = arg
    print(f"start {n}\n", end="", flush=True)  # one write: two threads print
    time.sleep(seconds)
    return n * n


code = taskq.Worker(sys.argv[1], handlers={"work": work, "square": lambda n: n * n},
                    jobs=int(sys.argv[2]), heartbeat=float(sys.argv[3]), grace=10,
                    processes=sys.argv[4:] == ["processes"]).run()
print(f"exit {code}", flush=True)
sys.exit(code)
