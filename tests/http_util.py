"""Helpers for the tests of task_master --http (http_test.py and
dashboard_browser_test.py): start the real binaries on 127.0.0.1 with ports
the OS picks, read what they print, fetch pages, wait on conditions with a
deadline. Standard library only."""
import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

AUTHKEY = "http-test-key"


def wait_until(what, cond, timeout=30.0, every=0.05):
    """Calls cond until it returns something true, or fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class Proc:
    """A child process whose stdout lines are read on a thread."""

    def __init__(self, args, env=None):
        self.args = args
        self.lines = queue.Queue()
        self.seen = []
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, text=True, env=env)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix, timeout=30.0):
        """The first line (from now on) that starts with prefix."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.args[0]}: no line starting {prefix!r} in {timeout} s; "
                                     f"saw {self.seen[-10:]}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"{self.args[0]} ended before printing {prefix!r}; "
                                     f"saw {self.seen[-10:]}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p.stdout.close()


def build_dir():
    return os.environ.get("TASKQ_BUILD", os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + "/build")


def task_file(lines):
    f = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    f.write("".join(l + "\n" for l in lines))
    f.close()
    return f.name


def start_master(bin_dir, http, tasks, extra=(), env=None):
    """task_master on 127.0.0.1 with --http; returns (proc, port, dashboard URL)."""
    args = [f"{bin_dir}/master/task_master", "--bind", "127.0.0.1", "--port", "0",
            "--authkey", AUTHKEY, "--http", http, "--heartbeat", "0.2", "-q",
            "--tasks", tasks, *extra]
    m = Proc(args, env=env)
    line = m.expect("taskq master")
    port = int(line.rsplit(":", 1)[1])
    url = m.expect("Dashboard: ").split(" ", 1)[1]
    return m, port, url


def start_worker(bin_dir, port, name, jobs=2):
    return Proc([f"{bin_dir}/worker/task_worker", "--server", f"127.0.0.1:{port}",
                 "--authkey", AUTHKEY, "--name", name, "-j", str(jobs), "--heartbeat", "0.2", "-q"])


def get(url, headers=None, timeout=10):
    """(status, body text) of a GET; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def status(base):
    code, body = get(base + "api/status")
    assert code == 200, f"/api/status gave {code}: {body}"
    return json.loads(body)
