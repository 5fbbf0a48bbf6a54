"""taskq.Worker's forms and failures, and the download example."""
import functools
import http.server
import sys
import threading

import taskq
from conftest import KEY, py

DECORATED = '''
import sys, taskq
w = taskq.Worker(sys.argv[1], jobs=2, processes=sys.argv[2] == "processes", heartbeat=0.3)

@w.handler()
def square(n):
    return n * n

@w.handler("boom")
def boom(arg):
    if arg == "task":
        raise taskq.TaskFailed("bad argument", retry=False)
    raise ValueError("flaky")

sys.exit(w.run())
'''


def run_worker(procs, address, mode):
    return procs([sys.executable, "-c", DECORATED, address, mode])


def check_worker_forms(serve, procs, mode):
    m = serve("--max-attempts", "2")
    with taskq.connect(m.address, KEY) as c:
        ids = c.queue("tasks").put_many([("square", n) for n in range(3000)])
        bad = c.queue("tasks").put_many([("boom", "task"), ("boom", "flaky")])
        w = run_worker(procs, m.address, mode)
        got = {r.id: r for r in c.queue("results").collect(count=3002, timeout=20)}
        assert all(got[i].value == got[i].arg ** 2 for i in ids)
        hard, flaky = got[bad[0]].outcome, got[bad[1]].outcome
        assert not hard.ok and hard.error == "bad argument" and got[bad[0]].attempt == 1
        assert not flaky.ok and flaky.error == "ValueError: flaky" and got[bad[1]].attempt == 2
        m.stop()
        assert w.wait(10) == 0, w.err_lines


def test_threads_decorator_and_failures(serve, procs):
    check_worker_forms(serve, procs, "threads")


def test_processes(serve, procs):
    check_worker_forms(serve, procs, "processes")


def test_worker_ends_cleanly_when_the_master_stops(serve, procs):
    m = serve()
    w = procs(py("task_worker.py", m.address))
    w.wait_line(r"^Connect to server")
    with taskq.connect(m.address, KEY) as c:  # the worker has said hello once a task runs
        c.queue("tasks").put("square", 5)
        assert c.queue("results").get(timeout=10).value == 25
    m.stop()
    assert w.wait(10) == 0
    assert w.lines[-1] == "worker exit." and not any("Traceback" in l for l in w.err_lines)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_worker_example(serve, procs, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "page.txt").write_bytes(b"hello " * 1000)
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        m = serve()
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        out = tmp_path / "out"
        w = procs(py("download_worker.py", m.address, "--out", str(out), "--jobs", "2"))
        with taskq.connect(m.address, KEY) as c:
            ids = c.queue("tasks").put_many([("fetch", f"{base}/page.txt"),
                                             ("fetch", f"{base}/missing"),
                                             ("fetch", "file:///etc/passwd")])
            got = {r.id: r.outcome for r in c.queue("results").collect(count=3, timeout=20)}
        ok = got[ids[0]]
        assert ok.ok and ok.value["bytes"] == 6000
        assert open(ok.value["file"], "rb").read() == b"hello " * 1000
        assert not got[ids[1]].ok and "HTTP 404" in got[ids[1]].error
        assert not got[ids[2]].ok and "not an http(s) URL" in got[ids[2]].error
        m.stop()
        assert w.wait(10) == 0
    finally:
        httpd.shutdown()
