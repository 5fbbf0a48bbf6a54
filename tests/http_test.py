#!/usr/bin/env python3
"""task_master --http against the real binaries: /metrics passes promtool
mid-job and its counters only grow and agree with /api/status; the token rule
on a non-loopback bind; hostile clients (500 idle connections, a 1 MB request
line, malformed requests, an event stream that is never read) do not stop the
job or grow the master's memory without bound.

Usage: http_test.py BUILD_DIR   (ctest runs it; LABELS http)"""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_util import (get, start_master, start_worker, status, task_file,  # noqa: E402
                       wait_until)

BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else os.environ.get("TASKQ_BUILD", "build")


def metrics(base):
    code, body = get(base + "metrics")
    assert code == 200, f"/metrics gave {code}: {body}"
    return body


def samples(text):
    """{'name{labels}': value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def promtool(text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                       capture_output=True, timeout=30)
    assert r.returncode == 0, f"promtool check metrics failed:\n{r.stdout}{r.stderr}\n{text}"


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


class Job:
    """A master with a job of n sleep tasks and two workers."""

    def __init__(self, n, ms, http="127.0.0.1:0", extra=(), env=None, workers=True):
        self.tasks = task_file([f"sleep {ms}"] * n)
        self.master, self.port, self.url = start_master(BUILD, http, self.tasks,
                                                        ["--serve", *extra], env)
        self.base = re.sub(r"//[^/]+/", f"//127.0.0.1:{self.url.split(':')[2].split('/')[0]}/",
                           self.url.split("?")[0])
        self.workers = []
        if workers:
            self.start_workers()

    def start_workers(self):
        self.workers = [start_worker(BUILD, self.port, name) for name in ("ana", "ben")]

    def close(self):
        for w in self.workers:
            w.stop()
        self.master.stop(signal.SIGINT)
        os.unlink(self.tasks)


class MetricsTest(unittest.TestCase):
    def test_metrics_pass_promtool_grow_and_agree(self):
        job = Job(300, 10)
        try:
            s = wait_until("tasks done mid-job",
                           lambda: (lambda s: s if 0 < s["counters"]["accepted"] < 300 else None)(
                               status(job.base)))
            first = metrics(job.base)
            promtool(first)
            self.assertIn('taskq_queue_ready{queue="tasks"}', first)
            self.assertGreaterEqual(samples(first)["taskq_workers_connected"], 1)
            wait_until("the job's end", lambda: status(job.base)["counters"]["accepted"] == 300)
            time.sleep(0.6)  # let a snapshot after the last result be published
            last_status = status(job.base)
            last = metrics(job.base)
            promtool(last)
            a, b = samples(first), samples(last)
            for key, value in a.items():
                if key.endswith("_total") and key in b:
                    self.assertGreaterEqual(b[key], value, f"counter {key} went down")
            names = {"put": "taskq_tasks_put_total", "accepted": "taskq_tasks_accepted_total",
                     "failed": "taskq_tasks_failed_total", "requeued": "taskq_tasks_requeued_total",
                     "duplicates": "taskq_tasks_duplicates_total",
                     "delivered": "taskq_tasks_delivered_total"}
            for stat, metric in names.items():
                self.assertEqual(b[metric], last_status["counters"][stat], metric)
            self.assertEqual(b["taskq_tasks_accepted_total"], 300)
            self.assertGreater(b["process_resident_memory_bytes"], 0)
            self.assertEqual(s["workers"][0]["capacity"], 2)
            code, body = get(job.base + "healthz")
            self.assertEqual((code, body), (200, "ok\n"))
        finally:
            job.close()


class TokenTest(unittest.TestCase):
    def test_non_loopback_needs_the_token(self):
        job = Job(1, 0, http="0.0.0.0:0")
        try:
            token = job.url.split("?token=")[1]
            self.assertRegex(token, r"^[0-9a-f]{32}$")
            self.assertNotIn("http-test-key", job.url)
            for path in ("", "api/status", "metrics", "events"):
                self.assertEqual(get(job.base + path)[0], 401, f"/{path} without a token")
                self.assertEqual(get(job.base + path + "?token=" + "0" * 32)[0], 401,
                                 f"/{path} with a wrong token")
            self.assertEqual(get(job.base + "api/status?token=" + token)[0], 200)
            self.assertEqual(get(job.base + "metrics",
                                 {"Authorization": "Bearer " + token})[0], 200)
            self.assertEqual(get(job.base + "healthz")[0], 200)  # says nothing about the queues
        finally:
            job.close()

    def test_token_from_the_environment(self):
        env = dict(os.environ, TASKQ_HTTP_TOKEN="s3cret-token")
        job = Job(1, 0, http="0.0.0.0:0", env=env)
        try:
            self.assertTrue(job.url.endswith("?token=s3cret-token"), job.url)
            self.assertEqual(get(job.base + "api/status")[0], 401)
            self.assertEqual(get(job.base + "api/status?token=s3cret-token")[0], 200)
        finally:
            job.close()

    def test_bad_flag_is_a_usage_error(self):
        r = subprocess.run([f"{BUILD}/master/task_master", "--authkey", "k", "--port", "0",
                            "--http", "127.0.0.1:http"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("expected [ADDR:]PORT", r.stderr)


def raw(port, data, read=True, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def try_status(base):
    try:
        return status(base)
    except (OSError, AssertionError, ValueError):
        return None


class AbuseTest(unittest.TestCase):
    def test_hostile_clients_do_not_hurt_the_job(self):
        n = 400
        job = Job(n, 5, extra=["--workers", "2"], workers=False)  # the job starts under abuse
        http_port = int(job.base.split(":")[2].strip("/"))
        idle, stuck = [], []
        try:
            wait_until("a first snapshot", lambda: get(job.base + "healthz")[0] == 200)
            before = rss_kb(job.master.p.pid)
            huge = raw(http_port, b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(huge.startswith(b"HTTP/1.1 414 "), huge[:80])
            for junk in (b"\x00\xff garbage\r\n\r\n", b"GET\r\n\r\n", b"POST /api/status HTTP/1.1\r\n"
                         b"Content-Length: 99999999\r\n\r\n", b"GET /../../etc/passwd HTTP/1.1\r\n\r\n"):
                reply = raw(http_port, junk)
                self.assertRegex(reply[:13], rb"^HTTP/1.1 (400|404|413) ", junk)
            for _ in range(3):  # event streams never read, with tiny buffers
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
                s.connect(("127.0.0.1", http_port))
                s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
                stuck.append(s)
            for _ in range(500):  # connect and say nothing
                idle.append(socket.create_connection(("127.0.0.1", http_port), timeout=10))
            job.start_workers()
            # The job goes on to its end meanwhile (the pages answer late, if
            # at all, while the idle connections hold the HTTP threads).
            wait_until("the job's end under abuse",
                       lambda: (try_status(job.base) or {}).get("counters", {}).get("accepted") == n,
                       timeout=90)
            grown = rss_kb(job.master.p.pid) - before
            self.assertLess(grown, 64 * 1024, f"the master grew by {grown} kB")
            # Every hostile client hangs up at once (mid-stream for the
            # event streams): the master goes on serving.
            for s in idle + stuck:
                s.close()
            idle, stuck = [], []
            wait_until("the pages back", lambda: get(job.base + "healthz")[0] == 200)
            self.assertEqual(status(job.base)["counters"]["accepted"], n)
            self.assertIsNone(job.master.p.poll(), "the master ended")
        finally:
            for s in idle + stuck:
                s.close()
            job.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
