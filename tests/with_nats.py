#!/usr/bin/env python3
"""Runs a command with a NATS server (JetStream on) of its own on 127.0.0.1.

    with_nats.py COMMAND ARGS...

The server listens on a port the OS picks and keeps its store in a temporary
directory, removed after; the command finds its URL in TASKQ_TEST_STORE
(python/tests/conftest.py then starts every master with --store). The exit
code is the command's; the server is killed when it ends. For ctest's
nats_python_tests: the Python peer, written from docs/PROTOCOL.md, checked
against masters whose journal is in NATS."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    server = os.environ.get("TASKQ_NATS_SERVER") or shutil.which("nats-server") or "/usr/sbin/nats-server"
    store = tempfile.mkdtemp(prefix="taskq-nats-")
    port = free_port()
    # Appending: nats-server writes through the same open file that is read
    # here from the start (seek); otherwise its next line could land there.
    log = open(os.path.join(store, "log"), "a+")
    p = subprocess.Popen([server, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd",
                          os.path.join(store, "js")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            log.seek(0)
            if "Server is ready" in log.read():
                break
            if p.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                sys.exit("with_nats: nats-server did not start:\n" + log.read()[-2000:])
            time.sleep(0.05)  # nats-server says nothing else when it is ready
        env = dict(os.environ, TASKQ_TEST_STORE="nats://127.0.0.1:%d" % port)
        return subprocess.call(sys.argv[1:], env=env)
    finally:
        p.kill()
        p.wait()
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
