"""The package with the restricted keys an authkey issues (PROTOCOL 2.2, 2.5):
a worker key runs a taskq.Worker, a submitter key puts and collects its own
jobs, and what a role may not do raises taskq.Forbidden (a Worker exits 7)."""
import sys
import threading

import pytest

import taskq
from conftest import KEY

WORKER_CODE = '''
import sys, taskq
w = taskq.Worker(sys.argv[1], sys.argv[2].encode(), handlers={"square": lambda n: n * n},
                 connect_timeout=10)
sys.exit(w.run())
'''


@pytest.fixture(scope="module")
def keys():
    return taskq.issue_credentials(KEY)


def test_a_worker_key_and_a_submitter_key_run_a_job(shared, keys):
    w = taskq.Worker(shared.address, keys.worker, handlers={"square": lambda n: n * n},
                     heartbeat=0.3)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    try:
        with taskq.connect(shared.address, keys.submitter) as c:
            ids = c.queue("tasks").put_many([("square", n) for n in range(20)],
                                            reply_to="job.py-roles")
            job = c.queue("job.py-roles")
            got = {i.id: i.value for i in job.collect(count=20, timeout=20)}
            assert got == {i: (i - ids.start) ** 2 for i in ids}
            assert job.stats()["owed"] == 0
    finally:
        w.stop()
        t.join(10)


def test_forbidden_is_a_clear_exception_and_the_connection_goes_on(shared, keys):
    with taskq.connect(shared.address, keys.submitter) as c:
        with pytest.raises(taskq.Forbidden,
                           match="a submitter key cannot put tasks whose outcomes go to "
                                 "'results'") as e:
            c.queue("tasks").put("square", 2)
        assert e.value.code == "forbidden" and isinstance(e.value, taskq.RequestError)
        with pytest.raises(taskq.Forbidden, match="a submitter key cannot take from 'tasks'"):
            c.queue("tasks").take(timeout=0)
        # Refused, not cut off: the same connection puts into a job queue.
        assert len(c.queue("tasks").put_many([("square", 3)], reply_to="job.py-goes-on")) == 1
    with taskq.connect(shared.address, keys.worker, role="worker") as w:
        with pytest.raises(taskq.Forbidden, match="a worker key cannot put tasks"):
            w.queue("tasks").put("square", 2)
        with pytest.raises(taskq.Forbidden, match="a worker key cannot ask for stats"):
            w.stats()
    with pytest.raises(taskq.Forbidden, match="a worker key cannot say hello as a 'client'"):
        taskq.connect(shared.address, keys.worker)


def test_another_submitter_sees_a_job_only_by_naming_it(shared, keys):
    with taskq.connect(shared.address, keys.submitter) as a, \
            taskq.connect(shared.address, keys.submitter) as b, \
            taskq.connect(shared.address, KEY) as admin:
        a.queue("tasks").put_many([("square", 4)], reply_to="job.py-private")
        assert "job.py-private" in [q["name"] for q in a.stats()["queues"]]
        assert "job.py-private" not in [q["name"] for q in b.stats()["queues"]]
        assert "job.py-private" in [q["name"] for q in admin.stats()["queues"]]
        assert b.queue("job.py-private").stats()["owed"] == 1  # named: listed


def test_a_worker_with_a_submitter_key_exits_7(shared, keys, procs):
    p = procs([sys.executable, "-c", WORKER_CODE, shared.address, keys.submitter.decode()])
    assert p.wait(20) == 7, p.err_lines
    assert any("not allowed with this key: a submitter key cannot say hello as a 'worker'" in line
               for line in p.err_lines), p.err_lines


def test_a_damaged_key_is_refused_before_connecting(shared, keys):
    with pytest.raises(ValueError, match="cut or damaged"):
        taskq.connect(shared.address, keys.worker[:-2])
