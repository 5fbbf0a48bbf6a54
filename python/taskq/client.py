"""The native client: what BaseManager gives the tutorial, over taskq.

    with taskq.connect("127.0.0.1:5000", authkey=b"abc") as c:
        tasks = c.queue("tasks")
        tasks.put("square", 7)
        r = c.queue("results").get(timeout=10)   # r.arg == 7, r.value == 49
        t = tasks.take(timeout=10)                # leased: t.done(v) or t.fail(e)

Thread: a Client is used by one thread at a time.
"""
import itertools
import time
from typing import Any, NamedTuple, Optional

from . import codec
from .errors import EpochChanged, Empty, Full, RequestError, Shutdown, Unavailable, request_error
from .session import Session

_REPLY_SLACK_S = 30.0  # how long past a request's own wait to wait for its reply
_PARK_S = 30.0         # a get that waits for ever parks this long at a time


class Outcome(NamedTuple):
    """What happened to a task (PROTOCOL 6.2)."""
    ok: bool
    value: Any        # the result when ok
    error: str        # the error text when not ok ("" when ok)
    worker: str
    elapsed_us: int


class Item(NamedTuple):
    """An entry a get handed out: a task, or (from a reply queue) a task with
    its outcome."""
    id: int
    kind: str
    arg: Any
    attempt: int
    outcome: Optional[Outcome] = None

    @property
    def value(self):
        """The outcome's value; raises ValueError if the task failed."""
        if self.outcome is None:
            raise ValueError(f"entry {self.id} is a task, not an outcome")
        if not self.outcome.ok:
            raise ValueError(f"task {self.id} ({self.kind}) failed: {self.outcome.error}")
        return self.outcome.value

    @staticmethod
    def from_entry(e) -> "Item":
        out = e[4] if len(e) > 4 else None
        if out is not None:
            ok = out[0]
            out = Outcome(ok, out[1] if ok else None, "" if ok else out[1], out[2], out[3])
        return Item(e[0], e[1], e[2], e[3], out)


class Task:
    """A task taken with a lease: it stays the master's until done() or
    fail(); if this client goes away first, the task goes to another worker."""

    def __init__(self, client, item: Item, epoch: int):
        self._client, self.item, self.epoch = client, item, epoch
        self.id, self.kind, self.arg, self.attempt = item.id, item.kind, item.arg, item.attempt
        self._started = time.monotonic()

    def _elapsed_us(self):
        return int((time.monotonic() - self._started) * 1e6)

    def done(self, value=None) -> bool:
        """Reports success; False if the task had an outcome already."""
        return self._client._report(self, [self.id, True, value, self._elapsed_us()])

    def fail(self, error: str, retry: bool = True) -> bool:
        """Reports failure; retry False: another attempt would fail too."""
        text = str(error).encode("utf-8", "surrogateescape")[:codec.MAX_ERROR]
        return self._client._report(
            self, [self.id, False, text.decode("utf-8", "ignore"),
                   self._elapsed_us(), bool(retry), False, int(self.attempt)])

    def __repr__(self):
        return f"Task(id={self.id}, kind={self.kind!r}, arg={self.arg!r}, attempt={self.attempt})"


class Queue:
    """A named queue on the master, created on first use."""

    def __init__(self, client, name: str):
        self._client, self.name = client, name

    def put(self, kind: str, arg=None, *, reply_to="results", time_limit=0.0, wait=0.0) -> int:
        """Appends one task; returns its id. time_limit: seconds a worker may
        hold it (0: the master's default). wait: seconds to wait for room in
        a queue at its limit, then Full."""
        return self.put_many([(kind, arg)], reply_to=reply_to, time_limit=time_limit,
                             wait=wait).start

    def put_many(self, tasks, *, reply_to="results", time_limit=0.0, wait=0.0) -> range:
        """Appends (kind, arg) pairs, in as few messages as fit (65,536 tasks,
        32 MiB); returns their ids (consecutive within one message). The next
        message is encoded and sent while the master handles the last one.
        Raises Full if a message found no room (saying which were put)."""
        fields = {"op": "put", "queue": self.name, "reply_to": reply_to,
                  "timeout_ms": int(wait * 1000)}
        ids, pending = None, None
        for build in self._messages(tasks, fields, time_limit):
            rid = self._client.send_request(build)
            if pending is not None:
                ids = _join(ids, self._finish_put(pending, fields, wait, ids, rid))
            pending = (rid, build)
        return _join(ids, self._finish_put(pending, fields, wait, ids, None))

    def _finish_put(self, pending, fields, wait, done, next_rid) -> range:
        rid, build = pending
        r = self._client.await_reply(rid, wait)
        if r["op"] == "error" and r.get("code") == "hello_required":
            r = self._client.call(fields, wait, build=build)  # hello, then once more
        elif r["op"] == "error":
            put = f"ids {done.start}..{done.stop - 1}" if done else "none"
            if next_rid is not None:  # its tasks may have found room: say so
                nxt = self._client.await_reply(next_rid, wait)
                if nxt["op"] == "put_ok" and nxt["count"]:
                    put += f" and {nxt['first_id']}..{nxt['first_id'] + nxt['count'] - 1}"
            self._client.raise_for(fields, r, f" (tasks of this put_many already put: {put})")
        return range(r["first_id"], r["first_id"] + r["count"])

    def _messages(self, tasks, fields, time_limit):
        """build(rid) functions, one per message; a chunk's items are encoded
        once, straight into the message, and halved while too large."""
        it, first = iter(tasks), True
        while True:
            chunk = list(itertools.islice(it, codec.MAX_BATCH))
            if not chunk and not first:
                return
            first = False
            if time_limit:
                opts = {"timeout_ms": int(time_limit * 1000)}
                chunk = [(kind, arg, opts) for kind, arg in chunk]
            yield from self._encode(chunk, fields)
            if not chunk:
                return

    def _encode(self, chunk, fields):
        items = codec.encode(chunk)  # (kind, arg) tuples go as arrays
        if len(items) > codec.MAX_MESSAGE // 2 and len(chunk) > 1:
            half = len(chunk) // 2
            yield from self._encode(chunk[:half], fields)
            yield from self._encode(chunk[half:], fields)
            return
        if len(items) > codec.MAX_VALUE + 1024:
            raise ValueError(f"a task argument of about {len(items)} bytes encoded is over the "
                             f"limit of {codec.MAX_VALUE} (16 MiB): pass a reference instead")
        yield lambda rid: codec.map_with_raw_field(dict(fields, rid=rid), "items", items)

    def get(self, block=True, timeout=None, *, kinds=()) -> Item:
        """Takes one entry for good, like queue.Queue.get; raises queue.Empty
        when none came within timeout (None: wait for ever)."""
        return self.get_many(1, block=block, timeout=timeout, kinds=kinds)[0]

    def get_many(self, max=1000, block=True, timeout=None, *, kinds=(), lease=False) -> list:
        """Takes up to max entries, waiting for the first; raises queue.Empty
        when none came. lease: outcomes stay the master's until Client.ack."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = 0.0 if not block else (
                _PARK_S if deadline is None else max_(0.0, deadline - time.monotonic()))
            items = self._client._get(self.name, max, wait, lease, kinds)
            if items:
                return [Item.from_entry(e) for e in items]
            if not block or (deadline is not None and time.monotonic() >= deadline):
                raise Empty

    def get_nowait(self) -> Item:
        return self.get(block=False)

    def take(self, timeout=None, *, kinds=()) -> Task:
        """Takes one task leased; raises queue.Empty when none came."""
        return self.take_many(1, timeout, kinds=kinds)[0]

    def take_many(self, max=1000, timeout=None, *, kinds=()) -> list:
        epoch = self._client.session.epoch
        items = self.get_many(max, timeout=timeout, kinds=kinds, lease=True)
        tasks = [Task(self._client, i, epoch) for i in items]
        for t in tasks:
            self._client._leased[t.id] = t.epoch
        return tasks

    def collect(self, count=None, timeout=None, batch=1000):
        """Yields outcomes (or entries) taken leased, each id once; acknowledges
        a batch once the caller has moved past it, so an outcome lost with
        this process comes back. Stops after count items, or raises
        queue.Empty when none came within timeout."""
        seen, epoch, got = set(), self._client.session.epoch, 0
        while count is None or got < count:
            items = self.get_many(batch if count is None else min(batch, count - got),
                                  timeout=timeout, lease=True)
            if self._client.session.epoch != epoch:
                seen, epoch = set(), self._client.session.epoch
            for item in items:
                if item.id not in seen:  # again after a reconnect (PROTOCOL 4.5)
                    seen.add(item.id)
                    got += 1
                    yield item
            self._client.ack([i.id for i in items])

    def put_nowait(self, kind, arg=None) -> int:
        return self.put(kind, arg)

    def stats(self) -> dict:
        """{"name", "ready", "leased", "failed", "owed"} of this queue (PROTOCOL 5.10)."""
        for q in self._client.stats(queue=self.name).get("queues") or []:
            if q["name"] == self.name:
                return q
        return {"name": self.name, "ready": 0, "leased": 0, "failed": 0, "owed": 0}

    def qsize(self) -> int:
        """Entries ready to take now (not those leased out)."""
        return self.stats()["ready"]

    def empty(self) -> bool:
        return self.qsize() == 0


def _join(ids, part: range) -> range:
    return part if ids is None else range(ids.start, part.stop)


def max_(a, b):
    return a if a > b else b


class Client:
    """A connection to one master. Use taskq.connect()."""

    def __init__(self, server="127.0.0.1:5000", authkey=None, *, name=None, timeout=10.0,
                 role="client"):
        self.session = Session(server, authkey, role=role, name=name)
        self.timeout = timeout
        self._leased = {}  # id -> epoch of tasks taken leased, not yet reported
        self.session.open()
        try:
            self.session.handshake(timeout)
        except BaseException:
            self.session.close_socket(0)
            raise

    def queue(self, name: str) -> Queue:
        return Queue(self, name)

    # --- requests -----------------------------------------------------------

    def call(self, msg: dict, wait_s: float = 0.0, build=None) -> dict:
        """Sends a request with a fresh rid and returns the reply with that
        rid. If the master forgot this client (it restarted), says hello
        again and resends once; a result only if the epoch is the same.
        build(rid), if given, makes the message's bytes instead of msg."""
        for attempt in range(2):
            if build is None:
                msg["rid"] = rid = self.session.next_rid()
                self.session.send(msg)
            else:
                rid = self.send_request(build)
            reply = self.await_reply(rid, wait_s)
            if reply["op"] != "error":
                return reply
            if reply.get("code") == "hello_required" and attempt == 0:
                epoch = self.session.epoch
                self.session.handshake(self.timeout)
                if self.session.epoch != epoch:
                    self._leased.clear()
                    if msg["op"] in ("result", "ack"):
                        raise EpochChanged(
                            f"the master at {self.session.display} restarted without its "
                            "journal (--data-dir): it no longer knows the tasks taken before")
                continue
            self.raise_for(msg, reply)
        raise RequestError("hello_required", "the master forgot this client twice in a row")

    def send_request(self, build) -> int:
        """Sends build(rid) with a fresh rid; returns the rid."""
        rid = self.session.next_rid()
        self.session.send_raw(build(rid))
        return rid

    def await_reply(self, rid, wait_s) -> dict:
        return self._await(rid, wait_s + _REPLY_SLACK_S)

    @staticmethod
    def raise_for(msg, reply, more=""):
        code, text = reply.get("code", ""), reply.get("message", "")
        if code == "full":
            raise Full(f"queue {msg.get('queue')!r} stayed full: {text}{more}")
        raise request_error(code, text + more)

    def _await(self, rid, wait_s) -> dict:
        deadline = time.monotonic() + wait_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unavailable(f"the master at {self.session.display} did not answer "
                                  f"within {wait_s:g} s")
            readable, _ = self.session.poll(left)
            while readable:
                m = self.session.recv()
                if m is None:
                    break
                if m["op"] == "shutdown":
                    raise Shutdown(f"the master at {self.session.display} is shutting down "
                                   f"({m.get('reason', '')})")
                if m.get("rid") == rid or (m["op"] == "error" and m.get("rid", 0) == 0
                                           and m.get("code") == "hello_required"):
                    return m
                if m["op"] == "error" and m.get("rid", 0) == 0:
                    raise request_error(m.get("code", ""), m.get("message", ""))
                # else: a ping, or a late reply to something given up on

    def _get(self, queue, max, wait_s, lease, kinds):
        r = self.call({"op": "get", "queue": queue, "max": max, "timeout_ms": int(wait_s * 1000),
                       "lease": lease, "kinds": list(kinds)}, wait_s)
        return r["items"]

    def _report(self, task: Task, result) -> bool:
        if task.epoch != self.session.epoch:
            raise EpochChanged(f"task {task.id} came from a master that restarted without its "
                               "journal: its result cannot be reported")
        self._leased.pop(task.id, None)
        r = self.call({"op": "result", "results": [result]})
        return r.get("accepted", 0) == 1

    def ack(self, ids) -> int:
        """Removes outcomes taken with a lease and kept safe; returns how many
        the master removed (others were handed back already: dedupe by id)."""
        ids, acked = list(ids), 0
        for i in range(0, len(ids), codec.MAX_BATCH):
            acked += self.call({"op": "ack", "ids": ids[i:i + codec.MAX_BATCH]}).get("acked", 0)
        return acked

    def release(self, tasks):
        """Hands leased tasks back unstarted (no attempt used)."""
        ids = [t.id for t in tasks if self._leased.pop(t.id, None) == self.session.epoch]
        self.session.send({"op": "release", "ids": ids})

    def stats(self, queue=None) -> dict:
        """{"queues": [...], "workers": [...], "counters": {...}} (PROTOCOL 5.10).
        queue: a job queue to list even to a submitter's key, which sees only
        the job queues it put to (PROTOCOL 2.5)."""
        r = self.call({"op": "stats", "queue": queue} if queue else {"op": "stats"})
        return {k: r.get(k) for k in ("queues", "workers", "counters")}

    # --- leaving --------------------------------------------------------------

    def close(self):
        """Says goodbye, handing back tasks taken and not reported."""
        if self.session.sock is None:
            return
        epoch = self.session.epoch
        self.session.goodbye([i for i, e in self._leased.items() if e == epoch])
        self._leased.clear()
        self.session.close_socket(1000)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def connect(server="127.0.0.1:5000", authkey=None, *, name=None, timeout=10.0,
            role="client") -> Client:
    """Connects to a master at "HOST[:PORT]" (or "tcp://HOST:PORT", or a
    (host, port) tuple) with keys derived from authkey (bytes; default
    TASKQ_AUTHKEY). Raises AuthenticationError for a wrong key, Unavailable
    when no master answers within timeout seconds.

    One master only: a list ("A,B") is a ValueError saying that only a
    Worker takes several. A client's ids, leases, outcomes and job queues
    live on the master it put them to, and masters share no queues, so a
    client moved to another master would wait there for outcomes of tasks
    it never put there; a program that wants another master connects to it
    and puts its tasks again."""
    return Client(server, authkey, name=name, timeout=timeout, role=role)
