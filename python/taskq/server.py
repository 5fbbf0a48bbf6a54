"""Starts a C++ task_master serving the queues, as a child process, for the
scripts that start their own master the way the tutorial's task_master.py
does (BaseManager.start()).

The binary: the binary argument, else $TASKQ_MASTER, else task_master on
PATH. The authkey goes to it through TASKQ_AUTHKEY in its environment, never
on its command line.
"""
import os
import re
import shutil
import signal
import subprocess
import threading
import time

from .errors import TaskqError
from .session import resolve_authkey

_LISTENING = re.compile(rb"listening on (\S+):(\d+)")


def find_master_binary(binary=None) -> str:
    path = binary or os.environ.get("TASKQ_MASTER") or shutil.which("task_master")
    if not path or not os.access(path, os.X_OK):
        raise TaskqError(
            "cannot find the task_master program: build it (make build) and put "
            "build/master on PATH, or set TASKQ_MASTER=/path/to/task_master")
    return path


class Server:
    """A task_master --serve child process; stop() ends it (SIGTERM: it tells
    its peers it is shutting down)."""

    def __init__(self, port=5000, authkey=None, *, bind="*", binary=None, args=(),
                 timeout=10.0):
        env = dict(os.environ)
        env["TASKQ_AUTHKEY"] = resolve_authkey(authkey).decode("utf-8", "surrogateescape")
        cmd = [find_master_binary(binary), "--serve", "--port", str(port), "--bind", bind,
               "--quiet", *args]
        # Its log (stderr) goes where ours goes; its stdout is read to the
        # end, so that a full pipe never blocks it.
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        self.port = self._read_port(timeout)
        threading.Thread(target=self._drain, daemon=True).start()
        host = "127.0.0.1" if bind in ("*", "0.0.0.0") else bind
        self.address = f"{host}:{self.port}"

    def _read_port(self, timeout) -> int:
        # The first line says where it listens; a failure ends the process.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            m = _LISTENING.search(line)
            if m:
                return int(m.group(2))
            if not line:
                break
        self.stop()
        raise TaskqError("task_master did not start (its message, if any, is above)")

    def _drain(self):
        for _ in self.proc.stdout:
            pass

    def stop(self, timeout=10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def serve(port=5000, authkey=None, **kwargs) -> Server:
    """Starts task_master --serve on port (0: any free port; see .port)."""
    return Server(port, authkey, **kwargs)
