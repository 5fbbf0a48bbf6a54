"""multiprocessing.managers, shaped for the tutorial's distributed processes,
over taskq. The tutorial's task_master.py and task_worker.py run unchanged
but for their import line:

    from taskq.managers import BaseManager      # was: from multiprocessing.managers import BaseManager

What it covers:
- BaseManager(address=(host, port), authkey=b"..."), a subclass of it, and
  register(typeid, callable=None, ...), which adds a method typeid() giving a
  queue proxy;
- start() (starts a task_master --serve child on the address, see
  taskq.server), connect(), shutdown(), and the with-statement;
- the proxy of a queue: put(obj), put_nowait, get(block=True, timeout=None)
  raising queue.Empty, get_nowait, qsize(), empty(), task_done() (accepted,
  does nothing).

What it does not: arbitrary proxied objects (dicts, Namespaces, your own
classes), get_server(), and the registered callable is never called. A
BaseManager proxy runs methods of a Python object held in the server
process; taskq's master is a C++ program that holds queues of msgpack
values and runs no Python code, which is also why its wire carries no
pickles. Every registered typeid therefore names a taskq queue: typeid
without a leading "get_" ("get_task_queue" -> queue "task_queue"). Values
are msgpack (None, bool, int, float, str, bytes, lists, dicts; a tuple comes
back as a list), not pickles.

Unlike the tutorial's queues these survive a crashed worker only as the
tutorial's do: get() takes an entry for good. Workers that must not lose
tasks use taskq.Worker or Queue.take(), which lease them.
"""
import queue as _queue

from .client import connect
from .server import Server

_KIND = "object"


class QueueProxy:
    """A taskq queue with the methods of queue.Queue the tutorial uses."""

    def __init__(self, client, name):
        self._q = client.queue(name)
        self.name = name

    def put(self, obj, block=True, timeout=None):
        self._q.put(_KIND, obj, wait=(timeout or 3600.0) if block else 0.0)

    def put_nowait(self, obj):
        self.put(obj, block=False)

    def get(self, block=True, timeout=None):
        return self._q.get(block=block, timeout=timeout, kinds=(_KIND,)).arg

    def get_nowait(self):
        return self.get(block=False)

    def qsize(self):
        return self._q.qsize()

    def empty(self):
        return self.qsize() == 0

    def task_done(self):
        pass

    def __repr__(self):
        return f"<taskq queue {self.name!r}>"


class BaseManager:
    """See the module's docstring for what it covers."""

    _registry = {}

    def __init__(self, address=None, authkey=None, serializer=None, ctx=None, *,
                 shutdown_timeout=1.0):
        if address is None:
            address = ("127.0.0.1", 5000)
        self.address = address
        self._authkey = authkey
        self._server = None
        self._client = None

    @classmethod
    def register(cls, typeid, callable=None, proxytype=None, exposed=None,
                 method_to_typeid=None, create_method=True):
        if "_registry" not in cls.__dict__:
            cls._registry = dict(cls._registry)
        cls._registry[typeid] = callable
        if create_method:
            name = typeid[4:] if typeid.startswith("get_") else typeid

            def method(self, *args, **kwargs):
                return QueueProxy(self._connected(), name)
            method.__name__ = typeid
            setattr(cls, typeid, method)

    def start(self, initializer=None, initargs=()):
        """Starts a taskq master (task_master --serve) on the address."""
        host, port = self.address
        self._server = Server(port, self._authkey, bind=host or "*")
        if initializer is not None:
            initializer(*initargs)
        self._client = connect(("127.0.0.1" if not host else host, self._server.port),
                               self._authkey)
        self.address = (host, self._server.port)

    def connect(self):
        """Connects to the master at the address."""
        self._client = connect(tuple(self.address), self._authkey)

    def get_server(self):
        raise NotImplementedError(
            "taskq.managers has no in-process server: the master is task_master, "
            "started by start() or on its own (task_master --serve)")

    def _connected(self):
        if self._client is None:
            raise RuntimeError("call start() or connect() first")
        return self._client

    def shutdown(self):
        """Disconnects; stops the master if start() started it."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self):
        if self._client is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()


Empty = _queue.Empty
