"""A worker in a few lines:

    taskq.Worker("127.0.0.1:5000", b"abc", handlers={"square": lambda n: n * n}).run()

or with a decorator:

    w = taskq.Worker("127.0.0.1:5000", b"abc", jobs=4)
    @w.handler("square")
    def square(n):
        return n * n
    w.run()

A handler takes the task's argument and returns its result; an exception
fails the task (retried on another attempt, unless it is TaskFailed with
retry=False).

jobs runs that many tasks at once, in threads by default: handlers that wait
(downloads, commands, sleeps) release the GIL, and threads take any callable,
lambdas included. processes=True runs them in jobs forked processes instead,
for handlers that compute in Python and would otherwise share one core under
the GIL; arguments and results then travel by pickle between processes.

The loop leases a window of tasks (about two round trips' worth, so batches
of thousands when tasks take microseconds), sends results in batches, sends
heartbeats, reconnects when the master falls silent or restarts (applying the
epoch rules of docs/PROTOCOL.md 4.1), and on SIGINT/SIGTERM hands the tasks
it has not started back, finishes those running (up to grace seconds) and
says goodbye.

Several masters, as task_worker --server A,B,C (docs/PROTOCOL.md 4.5):
taskq.Worker("lab1,lab2:6000", ...) works for the first master of the list
that answers, in order (one that refuses the connection is passed over at
once; one that accepts it has 3.5 s to say welcome). When its master falls
silent (3 of its heartbeats and 0.5 s) it tries the others in turn, starting
after the one lost and coming back to it last, each for as long (2 s longer
on the lost one); it works for the first that welcomes it. A master that
stops on purpose ends the worker (its shutdown), unless it says handover (a
master of a store another master carries on from: task_master --store);
then the worker moves on the same way. It says so on stderr, in
task_worker's words:

    Lost contact with the master at lab1:5000; trying lab2:6000...
    Lost the master at lab1:5000; now working for lab2:6000
    Dropped 1 result(s) for tasks of the master at lab1:5000 (it runs again those it did not get)

The masters share no queues: results of the lost master's tasks, sent or
not, go to no other master (a new "term"); that master hands those tasks
out again. The list is parsed as task_worker's (session.parse_server_list):
an empty element or a master named twice is a ValueError from run(). One
address behaves as it always did.

Thread: run() owns the connection and must be called from one thread; the
main thread if signals are to stop it.
"""
import collections
import concurrent.futures as cf
import math
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time

from . import codec
from .errors import AuthenticationError, Forbidden, Shutdown, Unavailable
from .session import Session

EXIT_OK, EXIT_ERROR, EXIT_AUTH, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 3, 4, 130
EXIT_FORBIDDEN = 7  # as task_worker's: a key whose role may not run tasks (a submitter's)
_MAX_WINDOW = 8192
_RESULT_BYTES = codec.MAX_MESSAGE // 2  # most bytes of values in one result message
_GET_TIMEOUT_MS = 5000
# Several masters (task_worker's worker/master_list.h): at start, how long a
# master that accepted the connection has to say welcome, and the pause
# between rounds of masters that all refused it; after losing its master,
# how much longer the try of the lost one lasts, which ends a round.
_START_TRY_S, _START_ROUND_PAUSE_S, _ROUND_PAUSE_S = 3.5, 0.25, 2.0


class _DaemonThreadPool:
    """The handlers' threads, which do not hold up the interpreter's exit.
    concurrent.futures' own threads are joined when Python exits, so a worker
    stopped by a second Ctrl-C would stay until every running handler
    returned (a download, a sleep of minutes). These are daemon threads: the
    process ends when run() has returned and the program is done."""

    def __init__(self, n, name):
        self._q = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True)
                         for i in range(n)]
        for t in self._threads:
            t.start()

    def submit(self, fn, *args):
        f = cf.Future()
        self._q.put((f, fn, args))
        return f

    def _work(self):
        while True:
            job = self._q.get()
            if job is None:
                return
            f, fn, args = job
            if not f.set_running_or_notify_cancel():
                continue  # cancelled before it started
            try:
                f.set_result(fn(*args))
            except BaseException as e:  # the future carries it, as cf's do
                f.set_exception(e)

    def shutdown(self, cancel_futures=False):
        """Lets the threads end once the running handlers return (not waited
        for); with cancel_futures the queued ones never start."""
        if cancel_futures:
            try:
                while True:
                    job = self._q.get_nowait()
                    if job is not None:
                        job[0].cancel()
            except queue.Empty:
                pass
        for _ in self._threads:
            self._q.put(None)


class TaskFailed(Exception):
    """Raised by a handler to fail its task with a message; retry=False when
    another attempt would fail the same way, worker_fault=True when the fault
    is this worker's (a missing program), not the task's."""

    def __init__(self, message, retry=True, worker_fault=False):
        super().__init__(message)
        self.retry, self.worker_fault = retry, worker_fault


def _error_text(e: BaseException) -> str:
    text = str(e) if isinstance(e, TaskFailed) else f"{type(e).__name__}: {e}"
    # Cut to the limit without splitting a character.
    return text.encode("utf-8", "surrogateescape")[:codec.MAX_ERROR].decode("utf-8", "ignore")


_SMALL = (int, float, bool, type(None))


def run_chunk(handlers, chunk):
    """Runs entries [id, kind, arg, attempt]; returns (their results
    (PROTOCOL 6.3), total microseconds, bytes of the results' larger values)."""
    out, big, first = [], 0, time.perf_counter()
    for e in chunk:
        tid, kind, arg, attempt = e[0], e[1], e[2], e[3]
        start = time.perf_counter()
        fn = handlers.get(kind)
        try:
            if fn is None:
                raise TaskFailed(f"this worker has no handler for kind {kind!r}",
                                 worker_fault=True)
            value = fn(arg)
            us = int((time.perf_counter() - start) * 1e6)
            if not isinstance(value, _SMALL):
                n = codec.value_size(value)
                if n > codec.MAX_VALUE:
                    raise TaskFailed(f"the result is {n} bytes encoded, over the limit of "
                                     f"{codec.MAX_VALUE} (16 MiB)", retry=False)
                big += n
            out.append([tid, True, value, us])
        except Exception as e:  # the task's failure, not the worker's
            us = int((time.perf_counter() - start) * 1e6)
            retry = getattr(e, "retry", True)
            # The delivery it reports on: a failure sent again after a
            # reconnect, once the task was handed out anew, is then not
            # taken from the new delivery's attempts (PROTOCOL 6.3, 7.5).
            r = [tid, False, _error_text(e), us, bool(retry),
                 bool(getattr(e, "worker_fault", False)), int(attempt)]
            big += len(r[2])
            out.append(r)
    return out, (time.perf_counter() - first) * 1e6, big


def _approx_bytes(result) -> int:
    v = result[2]
    return 16 if isinstance(v, _SMALL) else codec.value_size(v)


_child_handlers = {}


def _init_child(handlers):
    global _child_handlers
    _child_handlers = handlers
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    # Forked, the child has the parent's handler for SIGTERM (which asks the
    # parent's loop to stop, and nothing here): the parent's terminate() on
    # a second Ctrl-C must end it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run_chunk_in_child(chunk):
    return run_chunk(_child_handlers, chunk)


class Worker:
    def __init__(self, server="127.0.0.1:5000", authkey=None, handlers=None, *, jobs=1,
                 processes=False, queue="tasks", name=None, heartbeat=1.0, grace=30.0,
                 connect_timeout=None):
        self.handlers = dict(handlers or {})
        self.jobs, self.processes, self.queue = max(1, int(jobs)), processes, queue
        self.heartbeat, self.grace, self.connect_timeout = heartbeat, grace, connect_timeout
        self._server, self._authkey, self._name = server, authkey, name
        self._stop_requested = 0
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def handler(self, kind=None):
        """Decorator: registers fn for tasks of kind (default: its name)."""
        def register(fn):
            self.handlers[kind or fn.__name__] = fn
            return fn
        return register

    def stop(self):
        """Asks run() to stop as on Ctrl-C; callable from any thread."""
        self._stop_requested += 1
        self._wake()

    def _wake(self):
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass

    def run(self) -> int:
        """Runs until the master shuts down (returns 0) or a signal or stop()
        ends it (0 once running tasks are finished; 130 on a second one).
        A wrong authkey (3), no master within connect_timeout (4) or a key
        that may not run tasks (7: a submitter's, or a queue a worker key may
        not take from) prints one line on stderr instead of a traceback."""
        prog = os.path.basename(sys.argv[0] or "worker") if sys.argv else "worker"
        old = self._install_signals()
        try:
            return _Loop(self).run()
        except AuthenticationError as e:
            print(f"{prog}: {e}", file=sys.stderr)
            return EXIT_AUTH
        except Unavailable as e:
            print(f"{prog}: {e}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        except Forbidden as e:
            print(f"{prog}: not allowed with this key: {e.message}", file=sys.stderr)
            return EXIT_FORBIDDEN
        finally:
            for sig, h in old.items():
                signal.signal(sig, h)

    def _install_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return {}
        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda *_: self.stop())
        return old


class _Loop:
    """One run of a Worker: the connection, the window and the results."""

    def __init__(self, w: Worker):
        self.w = w
        self.s = Session(w._server, w._authkey, role="worker", name=w._name,
                         heartbeat_ms=int(w.heartbeat * 1000), kinds=w.handlers,
                         capacity=w.jobs, several=True)
        # Given several masters: the one the socket points to (current), the
        # one whose tasks the worker holds (serving, its last welcome's), and
        # while trying them after losing it, when current's try ends.
        self.n_masters = len(self.s.masters)
        self.describe = ", ".join(d for _, d in self.s.masters)
        self.current = self.serving = 0
        self.trying = False
        self.try_window = self.try_end = 0.0
        self.next_round_at = None  # at start: when the next round of the list begins
        # Tasks and results carry the term they came in. A new term begins
        # with a welcome from another master of the list, or of another
        # epoch (PROTOCOL 4.1, 4.5): the old ids are not the new master's.
        self.term = 1
        self.stale_whose = None  # for the line about results dropped (None: no line)
        self.dropped = 0         # results of an older term given up on, not told yet
        if w.processes:
            self.pool = cf.ProcessPoolExecutor(
                w.jobs, mp_context=multiprocessing.get_context("fork"),
                initializer=_init_child, initargs=(w.handlers,))
            self.submit = lambda chunk: self.pool.submit(_run_chunk_in_child, chunk)
        else:
            self.pool = _DaemonThreadPool(w.jobs, "taskq-job")
            self.submit = lambda chunk: self.pool.submit(run_chunk, w.handlers, chunk)
        self.finished = collections.deque()  # futures done, from the pool's threads
        # Tasks travel in chunks, not one by one: a result costs no more
        # Python work than it must (see the Performance section of README).
        self.running = {}       # future -> (term, [ids]): leased, running or waiting
        self.in_flight = 0      # tasks in running
        self.unsent = []        # (term, [result], bytes): finished, not sent yet
        self.unacked = {}       # rid -> [(term, [result], bytes)]: sent, not acknowledged
        self.get_rid = None     # the get that is out
        self.get_sent = 0.0
        self.rtt_us = 0.0       # a get's round trip
        self.task_us = 0.0      # one task's time, averaged
        self.welcomed = False
        self.said_waiting = False
        self.hello_out = False
        self.last_sent = 0.0
        self.stopping = False
        self.stop_deadline = None
        self.started = time.monotonic()

    # --- the loop -------------------------------------------------------------

    def run(self) -> int:
        self.s.open()
        self.say_hello()
        self.try_end = time.monotonic() + _START_TRY_S
        try:
            while True:
                if self.w._stop_requested and not self.stopping:
                    self.begin_stop()
                if self.w._stop_requested > 1:
                    return self.leave(EXIT_INTERRUPTED)
                self.ask()
                readable, fds = self.s.poll(self.poll_timeout(), [self.w._wake_r])
                if fds:
                    self.drain_wake()
                self.collect_finished()
                if readable:
                    self.read_master()
                self.send_results()
                self.tick()
                if self.stopping and self.done_stopping():
                    return self.leave(EXIT_OK)
        except Shutdown:
            self.close(goodbye=False)
            return EXIT_OK
        except BaseException:
            self.close(goodbye=False)
            raise

    def poll_timeout(self) -> float:
        t = min(self.w.heartbeat, 0.25)
        if self.stopping:
            t = min(t, max(0.0, self.stop_deadline - time.monotonic()))
        return t

    def drain_wake(self):
        try:
            while os.read(self.w._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def send(self, msg):
        self.s.send(msg)
        self.last_sent = time.monotonic()

    # --- connection -----------------------------------------------------------

    def holding(self):
        # A hello to another master than the one whose tasks it holds: a new
        # session there, holding nothing (those ids would name its tasks).
        if self.current != self.serving:
            return []
        term = self.term
        held = [i for t, ids in self.running.values() if t == term for i in ids]
        chunks = self.unsent + [c for cs in self.unacked.values() for c in cs]
        held += [r[0] for t, rs, _ in chunks if t == term for r in rs]
        return held[:codec.MAX_BATCH]

    def say_hello(self):
        self.send(self.s.hello_message(self.holding() if self.welcomed else ()))
        self.hello_out = True
        self.hello_sent = time.monotonic()

    def on_welcome(self, msg):
        if not self.welcomed:
            self.serving = self.current  # the first master of the list that answered
        left = self.s.masters[self.serving][1]
        moved = self.current != self.serving
        old_epoch = self.s.epoch if self.welcomed else None
        self.s.on_welcome(msg)
        self.welcomed, self.hello_out, self.trying = True, False, False
        self.serving = self.current
        self.get_rid = None
        if moved:
            # Another master of the list: none of the tasks held are its.
            # Their results go to no master; the lost one hands them out
            # again when it takes this worker for dead, or comes back.
            print(f"Lost the master at {left}; now working for {self.s.display}",
                  file=sys.stderr, flush=True)
            self.new_term(f"of the master at {left} (it runs again those it did not get)")
            return
        # Whatever was out is lost or unanswered: resend results (the master
        # takes one per task), ask for tasks again.
        for rs in self.unacked.values():
            self.unsent.extend(rs)
        self.unacked.clear()
        if old_epoch is not None and old_epoch != self.s.epoch:
            # A master without its journal: the old ids name its new tasks.
            # Tasks still running from it are dropped when they finish.
            self.new_term(None)

    def new_term(self, whose):
        """The tasks held so far are not the master's that welcomed us:
        gives up on their results, sent or not (drop_stale tells how many
        when whose says whose they were)."""
        self.term += 1
        self.stale_whose = whose
        self.dropped += sum(len(rs) for cs in self.unacked.values() for _, rs, _ in cs)
        self.unacked.clear()

    def drop_stale(self):
        stale = [c for c in self.unsent if c[0] != self.term]
        if stale:
            self.dropped += sum(len(c[1]) for c in stale)
            self.unsent = [c for c in self.unsent if c[0] == self.term]
        if self.dropped and self.stale_whose:
            print(f"Dropped {self.dropped} result(s) for tasks {self.stale_whose}",
                  file=sys.stderr, flush=True)
        self.dropped = 0

    def reconnect(self):
        """The master fell silent: a new socket, a new hello."""
        self.s.open()
        self.say_hello()

    def connect(self, i, now):
        """A new socket to master i of the list, a new hello."""
        self.current = i
        self.s.point_to(i)
        self.reconnect()
        if self.trying:
            # Each master is tried for as long as the lost one had to speak;
            # the try of the lost one, which ends a round, lasts longer.
            self.try_end = now + self.try_window + (_ROUND_PAUSE_S if i == self.serving else 0)
        else:
            self.try_end = now + _START_TRY_S

    def start_tick(self, now):
        """Before a first welcome from a list: the first master that answers,
        in order; one that refuses the connection is passed over at once."""
        if self.next_round_at is not None:
            if now >= self.next_round_at:
                self.next_round_at = None
                self.connect(0, now)
            return
        if not self.s.refused and now < self.try_end:
            return
        if self.current + 1 < self.n_masters:
            self.connect(self.current + 1, now)
            return
        if not self.said_waiting:
            self.said_waiting = True
            print(f"taskq worker: waiting for a master at {self.describe} to come up...",
                  file=sys.stderr, flush=True)
        self.next_round_at = now + _START_ROUND_PAUSE_S

    def tick(self):
        now = time.monotonic()
        if self.hello_out and not self.welcomed:
            if self.w.connect_timeout is not None and now - self.started > self.w.connect_timeout:
                raise Unavailable(f"no taskq master answered at {self.describe} within "
                                  f"{self.w.connect_timeout:g} s")
            if self.n_masters > 1:
                self.start_tick(now)
            elif not self.said_waiting and now - self.started > 1.0:
                self.said_waiting = True
                print(f"taskq worker: waiting for the master at {self.s.display} to come up...",
                      file=sys.stderr, flush=True)
        if self.welcomed and not self.hello_out:
            if now - self.s.last_heard > self.silence_limit():
                if self.n_masters == 1:
                    self.reconnect()
                    return
                self.leave_master(now, f"Lost contact with the master at {self.s.display}")
                return
        elif self.welcomed and self.trying:
            if now >= self.try_end:
                self.connect((self.current + 1) % self.n_masters, now)
                return
        elif self.welcomed and now - self.hello_sent > 5.0:
            self.reconnect()  # a hello unanswered for 5 s: try a fresh socket
            return
        if self.welcomed and now - self.last_sent >= self.w.heartbeat:
            self.send({"op": "ping"})

    def silence_limit(self) -> float:
        """How long the master may be silent before it is taken for gone: 3
        of its heartbeats and 0.5 s (PROTOCOL.md 4.3); also how long each
        master of a list is tried."""
        return 3 * self.s.welcome.get("heartbeat_ms", 1000) / 1000 + 0.5

    def leave_master(self, now, why):
        """The master worked for is gone (why: a sentence naming it): the
        others in turn, starting after it, each for one window of its
        silence limit, coming back to it last."""
        self.trying, self.try_window = True, self.silence_limit()
        nxt = (self.serving + 1) % self.n_masters
        print(f"{why}; trying {self.s.masters[nxt][1]}...", file=sys.stderr, flush=True)
        self.connect(nxt, now)

    def read_master(self):
        while True:
            m = self.s.recv()
            if m is None:
                return
            op = m["op"]
            if op == "items":
                self.on_items(m)
            elif op == "result_ok":
                self.unacked.pop(m.get("rid"), None)
            elif op == "welcome":
                self.on_welcome(m)
            elif op == "shutdown":
                # A master on a store another takes over from (task_master
                # --store): given several masters, go on with the next, as
                # for a master lost (PROTOCOL.md 5.13).
                if m.get("handover") is True and self.n_masters > 1 and not self.stopping:
                    self.leave_master(time.monotonic(), f"The master at {self.s.display} stopped "
                                      "and hands its queues over to another master of its store")
                    return
                raise Shutdown(m.get("reason", ""))
            elif op == "error":
                self.on_error(m)

    def on_error(self, m):
        code = m.get("code")
        if code == "hello_required":
            if not self.hello_out:
                self.say_hello()
            return
        if code == "forbidden":  # asking again would be refused again
            raise Forbidden(code, m.get("message", ""))
        rid = m.get("rid", 0)
        if rid == self.get_rid:
            self.get_rid = None
        if rid in self.unacked:
            # A result refused as malformed cannot succeed if sent again.
            self.unacked.pop(rid)
        print(f"taskq worker: the master refused a request: {code}: {m.get('message', '')}",
              file=sys.stderr)

    # --- tasks ----------------------------------------------------------------

    def window(self) -> int:
        jobs = self.w.jobs
        per_rtt = max(1.0, self.rtt_us / self.task_us) if self.task_us > 0 else 1.0
        return int(min(max(2.0 * jobs * per_rtt, 2.0 * jobs), _MAX_WINDOW))

    def ask(self):
        if not self.welcomed or self.hello_out or self.stopping or self.get_rid is not None:
            return
        window = self.window()
        if self.in_flight > window // 2:
            return
        self.get_rid = self.s.next_rid()
        self.get_sent = time.monotonic()
        self.send({"op": "get", "rid": self.get_rid, "queue": self.w.queue,
                   "max": window - self.in_flight, "timeout_ms": _GET_TIMEOUT_MS,
                   "lease": True, "kinds": list(self.w.handlers)})

    def on_items(self, m):
        if m.get("rid") != self.get_rid:
            return  # a late answer to a get from before a reconnect
        self.get_rid = None
        items = m.get("items", [])
        if not items:
            return
        rtt = (time.monotonic() - self.get_sent) * 1e6
        self.rtt_us = rtt if self.rtt_us == 0 else 0.8 * self.rtt_us + 0.2 * rtt
        if self.stopping:  # came while stopping: back unstarted
            self.send({"op": "release", "ids": [e[0] for e in items]})
            return
        tasks = items
        self.in_flight += len(tasks)
        # Tasks of a microsecond go to the pool in a few large chunks (a
        # submit costs tens of microseconds); others one by one, so a slow
        # task holds up no other.
        quick = 0 < self.task_us < 1000 and len(tasks) > 4 * self.w.jobs
        size = math.ceil(len(tasks) / (4 * self.w.jobs)) if quick else 1
        for i in range(0, len(tasks), size):
            chunk = tasks[i:i + size]
            f = self.submit(chunk)
            self.running[f] = (self.term, [e[0] for e in chunk])
            f.add_done_callback(self.on_chunk_done)

    def on_chunk_done(self, f):  # any thread
        self.finished.append(f)
        self.w._wake()

    def collect_finished(self):
        while self.finished:
            f = self.finished.popleft()
            entry = self.running.pop(f, None)
            if entry is None or f.cancelled():  # cancelled by begin_stop: released
                continue
            term, ids = entry
            self.in_flight -= len(ids)
            try:
                results, us, big = f.result()
            except Exception as e:  # a process pool whose child died, say
                results, us, big = [[i, False, _error_text(e), 0, True] for i in ids], 0, 0
            if results:
                us /= len(results)
                self.task_us = us if self.task_us == 0 else 0.8 * self.task_us + 0.2 * us
            if big > _RESULT_BYTES // 2:  # one by one, so that messages stay small enough
                self.unsent += [(term, [r], _approx_bytes(r)) for r in results]
            else:
                self.unsent.append((term, results, big))

    def send_results(self):
        if not self.welcomed or self.hello_out:
            return
        self.drop_stale()  # tasks of a master left, or of a forgotten epoch
        if not self.unsent:
            return
        chunks, self.unsent = self.unsent, []
        part, count, size = [], 0, 0
        for c in chunks:
            if part and (count + len(c[1]) > codec.MAX_BATCH or size + c[2] > _RESULT_BYTES):
                self.send_result_message(part)
                part, count, size = [], 0, 0
            part.append(c)
            count += len(c[1])
            size += c[2]
        if part:
            self.send_result_message(part)

    def send_result_message(self, part):
        rid = self.s.next_rid()
        self.unacked[rid] = part
        results = part[0][1] if len(part) == 1 else [r for _, rs, _ in part for r in rs]
        self.send({"op": "result", "rid": rid, "results": results, "lazy_ack": not self.stopping})

    # --- stopping -------------------------------------------------------------

    def begin_stop(self):
        self.stopping = True
        self.stop_deadline = time.monotonic() + self.w.grace
        unstarted = []
        for f, (term, ids) in list(self.running.items()):
            if f.cancel():
                self.running.pop(f)
                self.in_flight -= len(ids)
                if term == self.term:
                    unstarted += ids
        # As task_worker says it, on stderr: stdout is the program's own
        # (handlers print there).
        if self.in_flight:
            print(f"stopping: finishing {self.in_flight} running task(s); Ctrl-C again to quit "
                  "now", file=sys.stderr, flush=True)
        if self.welcomed and unstarted and self.current == self.serving:
            self.send({"op": "release", "ids": unstarted})
        if self.welcomed and self.get_rid is not None:
            self.send({"op": "cancel", "rid": self.get_rid})

    def done_stopping(self) -> bool:
        if time.monotonic() >= self.stop_deadline:
            return True
        return not self.running and not self.unsent and not self.unacked \
            and (self.get_rid is None or not self.welcomed)

    def leave(self, code) -> int:
        self.close(goodbye=True, now=code == EXIT_INTERRUPTED)
        return code

    def close(self, goodbye, now=False):
        if goodbye and self.welcomed:
            # Unstarted tasks were released already; those still running
            # after the grace period go back with their attempt used.
            self.s.goodbye([])
        if isinstance(self.pool, _DaemonThreadPool):
            self.pool.shutdown(cancel_futures=True)
        else:
            if now:
                # A second Ctrl-C: the children running handlers end now, or
                # Python's exit would wait for them. (No public way before
                # Python 3.14's terminate_workers.)
                for p in list(getattr(self.pool, "_processes", {}).values()):
                    p.terminate()
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.s.close_socket(1000)
