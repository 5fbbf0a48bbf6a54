"""The tutorial's two scripts, with only their import line changed
(python/examples/tutorial), against each other over taskq."""
import os
import queue
import re
import sys

import pytest

from conftest import EXAMPLES, KEY

TUTORIAL = os.path.join(EXAMPLES, "tutorial")


def tutorial_script(name, tmp_path, port):
    """The script, on a port the test holds, and without the worker's
    one-second pause per task (ten seconds the test does not need)."""
    text = open(os.path.join(TUTORIAL, name), encoding="utf-8").read()
    assert "from taskq.managers import BaseManager" in text
    text = text.replace("5000", str(port)).replace("time.sleep(1)", "time.sleep(0)")
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return [sys.executable, str(path)]


def test_tutorial_scripts_produce_the_tutorial_output(procs, reserve_port, master_bin,
                                                      tmp_path):
    port = reserve_port()
    env = {"TASKQ_MASTER": master_bin}
    master = procs(tutorial_script("task_master.py", tmp_path, port), env=env)
    master.wait_line(r"^Try get results\.\.\.$")
    worker = procs(tutorial_script("task_worker.py", tmp_path, port), env=env)
    assert worker.wait(20) == 0, worker.err_lines
    assert master.wait(20) == 0, master.err_lines
    put = [int(m.group(1)) for m in map(re.compile(r"^Put task (\d+)\.\.\.$").match,
                                        master.lines) if m]
    assert len(put) == 10
    assert master.lines[10] == "Try get results..."
    assert master.lines[-1] == "master exit."
    assert master.lines[11:21] == [f"Result: {n} * {n} = {n * n}" for n in put]
    assert worker.lines == (["Connect to server 127.0.0.1..."]
                            + [f"run task {n} * {n}..." for n in put] + ["worker exit."])


def test_manager_proxy_and_limits(serve):
    from taskq.managers import BaseManager

    class M(BaseManager):
        pass
    M.register("get_jobs")
    m = serve()
    mgr = M(address=("127.0.0.1", m.port), authkey=KEY)
    with pytest.raises(RuntimeError, match="start\\(\\) or connect\\(\\)"):
        mgr.get_jobs()
    mgr.connect()
    q = mgr.get_jobs()
    q.put({"a": [1, 2]})
    q.put_nowait(b"raw")
    assert q.qsize() == 2 and not q.empty()
    assert q.get(timeout=1) == {"a": [1, 2]}
    assert q.get_nowait() == b"raw"
    with pytest.raises(queue.Empty):
        q.get(timeout=0.2)
    with pytest.raises(NotImplementedError, match="no in-process server"):
        mgr.get_server()
    mgr.shutdown()
