"""The native client against a real task_master --serve."""
import queue
import threading
import time

import msgpack
import pytest

import taskq
from conftest import KEY, wait_until


def test_put_get_take_done_fail(shared):
    m = shared
    with taskq.connect(m.address, KEY) as c:
        tasks, results = c.queue("t1"), c.queue("r1")
        ids = tasks.put_many([("square", 7), ("square", 12)], reply_to="r1")
        assert list(ids) == [ids.start, ids.start + 1]
        assert tasks.qsize() == 2
        t1, t2 = tasks.take(timeout=5), tasks.take(timeout=5)
        assert (t1.arg, t2.arg, t1.attempt) == (7, 12, 1)
        assert t1.done(49) is True
        assert t1.done(50) is False  # the first result wins
        assert t2.fail("bad argument", retry=False) is True
        got = {r.id: r for r in results.get_many(10, timeout=5)}
        assert got[t1.id].value == 49 and got[t1.id].outcome.ok
        assert not got[t2.id].outcome.ok and got[t2.id].outcome.error == "bad argument"
        with pytest.raises(ValueError, match="bad argument"):
            got[t2.id].value
        with pytest.raises(queue.Empty):
            results.get(timeout=0.2)
        stats = c.stats()
        assert stats["counters"]["put"] >= 2


def test_get_timeout_raises_queue_empty_in_time(shared):
    m = shared
    with taskq.connect(m.address, KEY) as c:
        start = time.monotonic()
        with pytest.raises(queue.Empty):
            c.queue("nothing").get(timeout=0.3)
        assert time.monotonic() - start < 5
        with pytest.raises(taskq.Empty):
            c.queue("nothing").get_nowait()


def test_close_hands_leased_tasks_back_unused(shared):
    m = shared
    with taskq.connect(m.address, KEY) as c:
        c.queue("t4").put("square", 3, reply_to="r4")
        c.queue("t4").take(timeout=5)  # never reported
    with taskq.connect(m.address, KEY) as c:
        t = c.queue("t4").take(timeout=5)
        assert t.arg == 3 and t.attempt == 1  # released: the delivery did not count


HOSTILE = [
    None, True, False, 0, -1, 2**64 - 1, -2**63, 1.5, -0.0, float("inf"), "", "naïve ✓",
    "bad \udcff utf-8", b"", b"\x00\xff" * 1000, [], {}, [[[[[[[[1]]]]]]]], {1: "a", "b": [b"x"]},
    {"nested": {"deep": [1, 2.5, None, {"k": b"\x01"}]}}, msgpack.ExtType(5, b"ext"),
    "x" * 70000, list(range(1000)),
]


def test_hostile_values_round_trip_byte_for_byte(shared):
    m = shared
    with taskq.connect(m.address, KEY) as c:
        tasks, results = c.queue("t2"), c.queue("r2")
        ids = tasks.put_many([("echo", v) for v in HOSTILE], reply_to="r2")
        for t in tasks.take_many(len(HOSTILE), timeout=5):
            t.done(t.arg)
        got = {}
        while len(got) < len(HOSTILE):
            for r in results.get_many(100, timeout=5):
                got[r.id] = r
        for i, v in zip(ids, HOSTILE):
            assert msgpack.packb(got[i].arg, use_bin_type=True, unicode_errors="surrogateescape") \
                == msgpack.packb(v, use_bin_type=True, unicode_errors="surrogateescape")
            assert msgpack.packb(got[i].value, use_bin_type=True,
                                 unicode_errors="surrogateescape") == \
                msgpack.packb(v, use_bin_type=True, unicode_errors="surrogateescape")


def test_unencodable_values_say_why(shared):
    m = shared
    with taskq.connect(m.address, KEY) as c:
        with pytest.raises(ValueError, match="outside msgpack's range"):
            c.queue("tasks").put("square", 2**64)
        with pytest.raises(TypeError, match="msgpack cannot carry"):
            c.queue("tasks").put("square", object())


def test_full_queue_raises_full(serve):
    m = serve("--max-queue", "2")
    with taskq.connect(m.address, KEY) as c:
        c.queue("tasks").put_many([("square", 1), ("square", 2)])
        with pytest.raises(taskq.Full):
            c.queue("tasks").put("square", 3)


def test_put_many_says_which_tasks_were_put_when_full(serve):
    m = serve("--max-queue", "70000")
    with taskq.connect(m.address, KEY) as c:
        with pytest.raises(taskq.Full, match=r"already put: ids 1\.\.65536\)"):
            c.queue("tasks").put_many(("square", n) for n in range(100000))
        assert c.queue("tasks").qsize() == 65536


def test_wrong_key_raises_authentication_error_within_5s(shared):
    m = shared
    start = time.monotonic()
    with pytest.raises(taskq.AuthenticationError, match="authkey does not match"):
        taskq.connect(m.address, b"abd")
    assert time.monotonic() - start < 5


def test_no_master_raises_unavailable(reserve_port):
    port = reserve_port()
    with pytest.raises(taskq.Unavailable, match="no taskq master answered"):
        taskq.connect(f"127.0.0.1:{port}", KEY, timeout=0.5)


def test_shutdown_raises_shutdown(serve):
    m = serve()
    c = taskq.connect(m.address, KEY)
    err = []

    def waiting_get():
        try:
            c.queue("tasks").get(timeout=20)
        except taskq.Shutdown as e:
            err.append(e)
    t = threading.Thread(target=waiting_get)
    t.start()
    # The get parks; stopping the master sends shutdown to every connection.
    wait_until(lambda: any(q["name"] == "tasks" for q in _stats(m)["queues"]),
               what="the get to park")
    m.stop()
    t.join(15)
    assert err and "shutting down" in str(err[0])


def _stats(m):
    with taskq.connect(m.address, KEY) as c:
        return c.stats()


def test_addresses(shared):
    m = shared
    for addr in (m.address, "tcp://" + m.address, ("127.0.0.1", m.port)):
        with taskq.connect(addr, KEY) as c:
            assert c.session.epoch != 0
    with pytest.raises(ValueError, match="port must be"):
        taskq.connect("127.0.0.1:99999", KEY)


def test_env_authkey(shared, monkeypatch):
    m = shared
    monkeypatch.setenv("TASKQ_AUTHKEY", KEY.decode())
    with taskq.connect(m.address) as c:
        assert c.queue("x").qsize() == 0
    monkeypatch.delenv("TASKQ_AUTHKEY")
    with pytest.raises(ValueError, match="no authkey"):
        taskq.connect(m.address)


def test_collect_leases_and_acks_outcomes_each_once(shared):
    m = shared
    with taskq.connect(m.address, KEY) as c:
        tasks = c.queue("t3")
        tasks.put_many([("square", n) for n in range(5)], reply_to="r3")
        for t in tasks.take_many(5, timeout=5):
            t.done(t.arg * t.arg)
        got = list(c.queue("r3").collect(count=3, timeout=5))
        assert len(got) == 3
    with taskq.connect(m.address, KEY) as c:
        rest = list(c.queue("r3").collect(count=2, timeout=5))
        assert sorted(r.value for r in got + rest) == [0, 1, 4, 9, 16]
        assert c.queue("r3").qsize() == 0


def test_a_job_by_protocol_section_7_10(shared):
    """A job as PROTOCOL 7.10 describes it, from Python: tasks put with the reply
    queue job.ID, `owed` counting down as their outcomes come, the job over when
    ready, leased and owed are all 0 there."""
    m = shared
    with taskq.connect(m.address, KEY) as c:
        tasks, reply = c.queue("t710"), c.queue("job.py710")
        tasks.put_many([("square", n) for n in (2, 3, 4)], reply_to="job.py710")
        assert reply.stats()["owed"] == 3 and tasks.stats()["owed"] == 0
        t = tasks.take(timeout=5)
        assert reply.stats()["owed"] == 3  # leased: still owed
        t.done(t.arg * t.arg)
        assert reply.stats()["owed"] == 2 and reply.stats()["ready"] == 1
        for _ in range(2):
            u = tasks.take(timeout=5)
            u.fail("no", retry=False)  # a failure is an outcome too
        got = reply.get_many(10, timeout=5, lease=True)
        assert sorted(i.arg for i in got) == [2, 3, 4]
        s = reply.stats()
        assert (s["ready"], s["leased"], s["owed"]) == (0, 3, 0)
        c.ack([i.id for i in got])
        s = reply.stats()
        assert (s["ready"], s["leased"], s["owed"]) == (0, 0, 0)  # the job is over
