"""A taskq.Worker given several masters ("A,B"), as task_worker --server A,B
(docs/PROTOCOL.md 4.5 "Several masters"): it works for the first that
answers and moves to the next when its master goes away, sending that one
no result of the lost master's tasks. Masters with heartbeats of 0.2 s: a
worker takes one for gone 1.1 s after its last word."""
import os
import signal
import threading
import time

import pytest

import taskq
from conftest import KEY, wait_until
from test_reliability import slow_worker


def serving(serve):
    return serve("--heartbeat", "0.2")


def test_a_worker_passes_a_master_that_is_not_there_and_works_for_the_next(
        serve, reserve_port, capsys):
    nobody = reserve_port()  # connections to it are refused
    b = serving(serve)
    w = taskq.Worker(f"127.0.0.1:{nobody},{b.address}", KEY,
                     handlers={"square": lambda n: n * n}, heartbeat=0.3)
    codes = []
    with taskq.connect(b.address, KEY) as c:
        ids = c.queue("tasks").put_many([("square", n) for n in range(5)])
        started = time.monotonic()
        t = threading.Thread(target=lambda: codes.append(w.run()), daemon=True)
        t.start()
        got = {r.id: r.value for r in c.queue("results").collect(count=5, timeout=15)}
        took = time.monotonic() - started
    assert got == {i: n * n for n, i in enumerate(ids)}
    # Passed over at once: not after the 3.5 s a master that accepted the
    # connection has to say welcome.
    assert took < 3.0, took
    w.stop()
    t.join(10)
    assert codes == [0]
    err = capsys.readouterr().err
    assert "waiting for" not in err and "Lost" not in err, err  # B answered in the first round


def test_a_worker_whose_master_is_killed_works_for_the_next_and_says_so(serve, procs):
    a, b = serving(serve), serving(serve)
    w = slow_worker(procs, f"{a.address},{b.address}", jobs=2)
    with taskq.connect(a.address, KEY) as c:
        # A slow task of A's runs when A dies: its result is not B's.
        c.queue("tasks").put_many([("work", [1, 0]), ("work", [2, 2.5])])
        assert c.queue("results").get(timeout=15).value == 1  # it works for A, the first
    w.wait_line(r"^start 2$")
    a.proc.kill()  # SIGKILL: no shutdown message
    a.proc.wait(10)
    moved = f"Lost the master at {a.address}; now working for {b.address}"
    dropped = f"Dropped 1 result(s) for tasks of the master at {a.address}"
    with taskq.connect(b.address, KEY) as c:
        # Ids 1 and 2 at B too: A's result for its task 2 would be taken for
        # B's (or counted a duplicate) if it reached B.
        ids = c.queue("tasks").put_many([("square", 3), ("square", 4)])
        got = {r.id: r.value for r in c.queue("results").collect(count=2, timeout=15)}
        assert got == {ids[0]: 9, ids[1]: 16}
        wait_until(lambda: moved in w.err_lines, timeout=10, what=f"{moved!r} in {w.err_lines}")
        wait_until(lambda: any(l.startswith(dropped) for l in w.err_lines), timeout=10,
                   what=f"{dropped!r} in {w.err_lines}")
        counters = c.stats()["counters"]
        assert counters["accepted"] == 2 and counters["duplicates"] == 0, counters
    assert f"Lost contact with the master at {a.address}; trying {b.address}..." in w.err_lines
    w.signal(signal.SIGTERM)
    assert w.wait(10) == 0, w.err_lines
    assert not any("Traceback" in l for l in w.err_lines), w.err_lines


def test_a_master_of_a_store_stopped_on_purpose_hands_its_worker_to_the_next(
        master_bin, reserve_port, procs):
    """task_master --store: Ctrl-C of the active master sends shutdown with
    handover (PROTOCOL.md 5.13) and lets go of the store; the standby takes
    over at once and the worker, given both, moves to it."""
    store = os.environ.get("TASKQ_TEST_STORE")
    if not store:
        pytest.skip("two masters on one store: TASKQ_TEST_STORE (ctest's nats_python_tests)")
    args = ("--heartbeat", "0.2", "--store", store, "--store-name", "pyhandover%d" % os.getpid(),
            "--takeover-after", "100")
    a = taskq.serve(0, KEY, bind="127.0.0.1", binary=master_bin, args=args)
    port_b = reserve_port()
    standby = {}
    # B stands by, not listening, until A lets go of the store: serve()
    # returns once it listens.
    t = threading.Thread(target=lambda: standby.setdefault("b", taskq.serve(
        port_b, KEY, bind="127.0.0.1", binary=master_bin, args=args, timeout=30)), daemon=True)
    t.start()
    try:
        w = slow_worker(procs, f"{a.address},127.0.0.1:{port_b}", jobs=2)
        with taskq.connect(a.address, KEY) as c:
            c.queue("tasks").put_many([("work", [1, 0])])
            assert c.queue("results").get(timeout=15).value == 1  # it works for A
        a.proc.send_signal(signal.SIGINT)
        assert a.proc.wait(10) == 0
        t.join(20)
        b = standby["b"]  # at once: not after --takeover-after's 100 s
        moved = (f"The master at {a.address} stopped and hands its queues over to another "
                 f"master of its store; trying {b.address}...")
        wait_until(lambda: moved in w.err_lines, timeout=10, what=f"{moved!r} in {w.err_lines}")
        with taskq.connect(b.address, KEY) as c:
            c.queue("tasks").put_many([("work", [2, 0])])
            assert c.queue("results").get(timeout=15).value == 4  # and now for B (2 * 2)
        assert w.p.poll() is None, w.err_lines
    finally:
        a.stop()
        if "b" in standby:
            standby["b"].stop()
