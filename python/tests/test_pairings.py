"""The examples in every pairing with the C++ binaries, end to end."""
import re

from conftest import py

RESULT = re.compile(r"^Result: (\d+) \* (\d+) = (\d+)$")


def check_master_output(lines):
    put = [int(m.group(1)) for m in map(re.compile(r"^Put task (\d+)\.\.\.$").match, lines) if m]
    results = [m for m in map(RESULT.match, lines) if m]
    assert len(put) == 10 and "Try get results..." in lines and lines[-1] == "master exit."
    assert sorted(int(m.group(1)) for m in results) == sorted(put)
    for m in results:
        a, b, sq = map(int, m.groups())
        assert a == b and sq == a * a


def check_worker_output(lines):
    assert lines[-1] == "worker exit."
    for line in lines:
        m = re.match(r"^run task (\d+) \* (\d+)\.\.\.$", line)
        if m:
            assert m.group(1) == m.group(2)


def test_python_master_cpp_worker(procs, reserve_port, worker_bin):
    port = reserve_port()
    master = procs(py("task_master.py", "--port", str(port)))
    master.wait_line(r"^Try get results")
    worker = procs([worker_bin, "--server", f"127.0.0.1:{port}"])
    assert master.wait(30) == 0
    check_master_output(master.lines)
    assert worker.wait(15) == 0  # the master told it to exit


def test_cpp_master_python_workers(procs, reserve_port, master_bin):
    port = reserve_port()
    master = procs([master_bin, "--port", str(port), "--bind", "127.0.0.1", "--square", "50",
                    "--workers", "2"])
    workers = [procs(py("task_worker.py", f"127.0.0.1:{port}")) for _ in range(2)]
    assert master.wait(30) == 0, master.err_lines
    assert any(l.startswith("Done: 50 of 50 tasks") for l in master.lines), master.lines
    ran = 0
    for w in workers:
        assert w.wait(15) == 0, w.err_lines
        check_worker_output(w.lines)
        ran += sum(l.startswith("run task") for l in w.lines)
    assert ran >= 50


def test_python_master_python_worker(procs, reserve_port):
    port = reserve_port()
    master = procs(py("task_master.py", "--port", str(port)))
    worker = procs(py("task_worker.py", f"127.0.0.1:{port}", "--jobs", "4"))
    assert master.wait(30) == 0, master.err_lines
    check_master_output(master.lines)
    assert worker.wait(15) == 0, worker.err_lines
    check_worker_output(worker.lines)
    assert sum(l.startswith("run task") for l in worker.lines) == 10


def test_mixed_workers_on_cpp_master(procs, reserve_port, master_bin, worker_bin):
    port = reserve_port()
    master = procs([master_bin, "--port", str(port), "--bind", "127.0.0.1", "--square", "2000",
                    "--workers", "2", "-q"])
    pw = procs(py("task_worker.py", f"127.0.0.1:{port}"))
    cw = procs([worker_bin, "--server", f"127.0.0.1:{port}", "-q"])
    assert master.wait(30) == 0, master.err_lines
    assert any(l.startswith("Done: 2000 of 2000 tasks") and "0 failed" in l
               for l in master.lines), master.lines
    assert pw.wait(15) == 0 and cw.wait(15) == 0
    check_worker_output(pw.lines)


def test_python_master_with_cpp_master_serving(procs, serve, worker_bin):
    # The example as a plain producer of a master that was already running.
    m = serve()
    worker = procs([worker_bin, "--server", m.address, "-q"])
    master = procs(py("task_master.py", "--server", m.address))
    assert master.wait(30) == 0, master.err_lines
    check_master_output(master.lines)
    m.stop()
    assert worker.wait(15) == 0
