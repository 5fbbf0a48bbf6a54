"""Fixtures for the Python package's tests: the real C++ binaries (paths from
ctest's environment: TASKQ_MASTER_BIN, TASKQ_WORKER_BIN) on 127.0.0.1, ports
the OS picks, every wait bounded."""
import itertools
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(PYTHON_DIR, "examples")
sys.path.insert(0, PYTHON_DIR)

import taskq  # noqa: E402

KEY = b"abc"


def binary(var):
    path = os.environ.get(var)
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"{var} must name the built binary (ctest sets it; by hand: "
                    f"{var}=build/master/task_master python3 -m pytest python/tests)")
    return path


@pytest.fixture(scope="session")
def master_bin():
    return binary("TASKQ_MASTER_BIN")


@pytest.fixture(scope="session")
def worker_bin():
    return binary("TASKQ_WORKER_BIN")


class Proc:
    """A child process whose output lines are read as they come."""

    def __init__(self, cmd, env=None, cwd=None):
        e = dict(os.environ)
        e["PYTHONPATH"] = PYTHON_DIR + os.pathsep + e.get("PYTHONPATH", "")
        e["PYTHONUNBUFFERED"] = "1"
        e["TASKQ_AUTHKEY"] = KEY.decode()
        if os.environ.get("TASKQ_MASTER_BIN"):  # for scripts that start a master
            e["TASKQ_MASTER"] = os.environ["TASKQ_MASTER_BIN"]
        e.update(env or {})
        self.cmd = cmd
        self.p = subprocess.Popen(cmd, env=e, cwd=cwd, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.lines, self.err_lines, self._q = [], [], queue.Queue()
        threading.Thread(target=self._read, args=(self.p.stdout, self.lines, True),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.p.stderr, self.err_lines, False),
                         daemon=True).start()

    def _read(self, f, into, notify):
        for raw in f:
            into.append(raw.decode(errors="replace").rstrip("\n"))
            if notify:
                self._q.put(None)
        if notify:
            self._q.put(None)

    def wait_line(self, pattern, timeout=15.0, count=1):
        """Waits until count stdout lines match pattern; returns the last match."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            found = [m for m in map(rx.search, list(self.lines)) if m]
            if len(found) >= count:
                return found[count - 1]
            left = deadline - time.monotonic()
            if left <= 0 or (self.p.poll() is not None and self._q.empty()):
                if self.p.poll() is not None:
                    time.sleep(0.05)  # the reader thread's last lines
                    found = [m for m in map(rx.search, list(self.lines)) if m]
                    if len(found) >= count:
                        return found[count - 1]
                pytest.fail(f"{os.path.basename(self.cmd[-1] if self.cmd else '')}: expected "
                            f"{count} line(s) matching {pattern!r} within {timeout} s; "
                            f"stdout: {self.lines[-20:]}, stderr: {self.err_lines[-20:]}")
            try:
                self._q.get(timeout=min(left, 0.5))
            except queue.Empty:
                pass

    def wait(self, timeout=20.0):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            pytest.fail(f"{self.cmd} did not exit within {timeout} s; stdout: "
                        f"{self.lines[-20:]}, stderr: {self.err_lines[-20:]}")

    def signal(self, sig):
        self.p.send_signal(sig)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


@pytest.fixture
def procs():
    """Starts processes; kills any still running when the test ends."""
    started = []

    def start(cmd, **kw):
        pr = Proc(cmd, **kw)
        started.append(pr)
        return pr
    yield start
    for pr in started:
        pr.kill()


@pytest.fixture
def reserve_port():
    """A port of 127.0.0.1 held (bound, SO_REUSEADDR, not listening) for the
    test, so no other program gets it while a master can still bind it."""
    held = []

    def reserve():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        held.append(s)
        return s.getsockname()[1]
    yield reserve
    for s in held:
        s.close()


# TASKQ_TEST_STORE=nats://...: the masters of the fixtures below keep their
# journal in NATS (task_master --store), each under a store name of its own
# so each starts empty, as a master without --data-dir does
# (tests/with_nats.py sets it for ctest's nats_python_tests).
_store_names = itertools.count()


def store_args(args):
    store = os.environ.get("TASKQ_TEST_STORE")
    if not store or "--data-dir" in args:
        return tuple(args)
    return tuple(args) + ("--store", store, "--store-name",
                          "py%d-%d" % (os.getpid(), next(_store_names)))


@pytest.fixture
def serve(master_bin):
    """Starts task_master --serve on a free port of 127.0.0.1."""
    servers = []

    def start(*args, port=0, key=KEY):
        s = taskq.serve(port, key, bind="127.0.0.1", binary=master_bin, args=store_args(args))
        servers.append(s)
        return s
    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def shared(master_bin):
    """One task_master --serve for a module's tests that use queues of
    their own (starting a master costs its key derivation, about 0.1 s idle)."""
    s = taskq.serve(0, KEY, bind="127.0.0.1", binary=master_bin, args=store_args(()))
    yield s
    s.stop()


def py(script, *args):
    return [sys.executable, os.path.join(EXAMPLES, script), *args]


def wait_until(pred, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
