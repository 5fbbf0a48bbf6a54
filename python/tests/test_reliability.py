"""A Python worker killed, interrupted, or facing a restarted master."""
import json
import os
import signal
import sys
import time

import pytest

import taskq
from conftest import KEY, wait_until

SLOW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slow_worker.py")


def slow_worker(procs, address, jobs=2, heartbeat=0.3, processes=False):
    return procs([sys.executable, SLOW, address, str(jobs), str(heartbeat)]
                 + (["processes"] if processes else []))


def collect(c, n, timeout=20):
    got = {}
    for r in c.queue("results").collect(count=n, timeout=timeout):
        got[r.id] = r
    return got


def test_worker_killed_mid_task_loses_nothing(serve, procs):
    m = serve()
    with taskq.connect(m.address, KEY) as c:
        ids = c.queue("tasks").put_many([("work", [n, 30 if n < 2 else 0]) for n in range(6)])
        w = slow_worker(procs, m.address, jobs=2)
        w.wait_line(r"^start 0$")
        w.wait_line(r"^start 1$")  # both slow tasks run; the others may be leased too
        w.signal(signal.SIGKILL)
        w.wait(10)
        # Its leases come back (heartbeat 0.3 s: declared dead after ~1 s);
        # a second worker runs them all, the slow ones again quickly.
        c.queue("tasks").put_many([])
        w2 = procs([sys.executable, "-c",
                    "import sys, taskq; sys.exit(taskq.Worker(sys.argv[1], handlers={'work': "
                    "lambda a: a[0] * a[0]}, heartbeat=0.3).run())", m.address])
        got = collect(c, 6)
        assert sorted(got) == list(ids)
        assert all(r.outcome.ok and r.value == r.arg[0] ** 2 for r in got.values())
        assert got[ids[0]].attempt == 2  # the killed delivery counted
        w2.signal(signal.SIGTERM)
        assert w2.wait(10) == 0


def test_ctrl_c_exits_0_and_hands_tasks_back(serve, procs):
    m = serve()
    with taskq.connect(m.address, KEY) as c:
        c.queue("tasks").put_many([("work", [n, 0.5]) for n in range(20)])
        w = slow_worker(procs, m.address, jobs=2)
        w.wait_line(r"^start \d+$", count=2)
        w.signal(signal.SIGINT)
        assert w.wait(15) == 0, "\n".join(w.err_lines)
        assert not any("Traceback" in l for l in w.err_lines), w.err_lines
        started = {int(l.split()[1]) for l in w.lines if l.startswith("start")}
        assert 2 <= len(started) < 20
        # The running tasks finished and were reported; the rest wait again,
        # none leased, and the unstarted ones used no attempt.
        done = collect(c, len(started))
        assert sorted(r.arg[0] for r in done.values()) == sorted(started)
        q = c.queue("tasks").stats()
        assert q["ready"] == 20 - len(started) and q["leased"] == 0
        rest = c.queue("tasks").get_many(100, timeout=5)
        assert len(rest) == 20 - len(started) and all(t.attempt == 1 for t in rest)


def test_wrong_key_worker_exits_3_within_5s(serve, procs):
    m = serve()
    w = procs([sys.executable, SLOW, m.address, "1", "1"], env={"TASKQ_AUTHKEY": "abd"})
    assert w.wait(5) == 3
    assert any("authentication failed: the authkey does not match the master at "
               in l for l in w.err_lines), w.err_lines
    assert not any("Traceback" in l for l in w.err_lines)


def test_master_restart_with_data_dir_mid_job(procs, reserve_port, master_bin, tmp_path):
    port = reserve_port()
    results = tmp_path / "results.jsonl"
    cmd = [master_bin, "--port", str(port), "--bind", "127.0.0.1", "--square", "1500", "-q",
           "--data-dir", str(tmp_path / "data"), "--results", str(results), "--timeout", "20"]
    master = procs(cmd)
    w = procs([sys.executable, "-c",
               "import sys, time, taskq\n"
               "def sq(n):\n    time.sleep(0.002)\n    return n * n\n"
               "sys.exit(taskq.Worker(sys.argv[1], handlers={'square': sq}, heartbeat=0.3).run())",
               f"127.0.0.1:{port}"])

    def lines():
        return results.read_text().splitlines() if results.exists() else []
    wait_until(lambda: len(lines()) >= 100, what="100 results before the kill")
    master.signal(signal.SIGKILL)
    master.wait(10)
    before = len(lines())
    assert before < 1500, "the job finished before the master could be killed"
    master2 = procs(cmd)
    assert master2.wait(60) == 0, master2.err_lines
    outcomes = [json.loads(l) for l in lines()]
    ids = [o["id"] for o in outcomes]
    assert len(set(ids)) == 1500 == len(ids)
    assert all(o["ok"] and o["value"] == o["arg"] ** 2 for o in outcomes), outcomes[:3]
    assert w.wait(15) == 0, w.err_lines  # the restarted master told it to exit


def test_master_restarted_without_journal_gets_no_old_results(serve, procs, reserve_port):
    # PROTOCOL 4.1: after a welcome with another epoch, results for tasks of
    # the old one are dropped, or the new master would take them for its own.
    port = reserve_port()
    m = serve(port=port)
    with taskq.connect(m.address, KEY) as c:
        c.queue("tasks").put("work", [0, 1.5])
    w = slow_worker(procs, m.address, jobs=1)
    w.wait_line(r"^start 0$")
    m.proc.kill()
    m.proc.wait()
    m2 = serve(port=port)
    with taskq.connect(m2.address, KEY) as c:
        # Id 1 again, a kind the worker does not run; then a task that can
        # only run after the old one (one thread), and whose result follows it.
        first = c.queue("tasks").put_many([("other", 1), ("work", [7, 0])])
        r = c.queue("results").get(timeout=20)
        assert r.id == first[1] and r.value == 49
        counters = c.stats()["counters"]
        assert counters["accepted"] == 1 and counters["duplicates"] == 0
        assert c.queue("tasks").qsize() == 1  # task 1 untouched
    w.signal(signal.SIGTERM)
    assert w.wait(10) == 0


@pytest.mark.parametrize("processes", [False, True])
def test_a_second_ctrl_c_exits_130_without_waiting_for_running_tasks(serve, procs, processes):
    """The first Ctrl-C waits for the running tasks (up to grace, 10 s in
    slow_worker); a second one ends the process at once, even though two
    handlers (threads, or child processes) are still sleeping through their
    30 s tasks."""
    m = serve()
    with taskq.connect(m.address, KEY) as c:
        c.queue("tasks").put_many([("work", [n, 30]) for n in range(2)])
        w = slow_worker(procs, m.address, jobs=2, processes=processes)
        w.wait_line(r"^start \d+$", count=2)
        w.signal(signal.SIGINT)
        wait_until(lambda: any("Ctrl-C again to quit now" in l for l in w.err_lines),
                   what="the first Ctrl-C's line")
        w.signal(signal.SIGINT)
        started = time.monotonic()
        assert w.wait(8) == 130, "\n".join(w.err_lines)
        assert time.monotonic() - started < 5
        assert not any("Traceback" in l for l in w.err_lines), w.err_lines
