"""taskq for Python: talk to a taskq master (task_master) from Python.

    import taskq
    with taskq.connect("127.0.0.1:5000", authkey=b"abc") as c:
        c.queue("tasks").put("square", 7)
        print(c.queue("results").get(timeout=10).value)   # 49

    taskq.Worker("127.0.0.1:5000", b"abc", handlers={"square": lambda n: n * n}).run()

taskq.managers runs scripts written for multiprocessing.managers.BaseManager.
The wire protocol is docs/PROTOCOL.md in the taskq repository.
"""
from .client import Client, Item, Outcome, Queue, Task, connect
from .errors import (AuthenticationError, Empty, EpochChanged, Forbidden, Full, RequestError,
                     Shutdown, TaskqError, Unavailable)
from .keys import derive_keys, issue_credentials
from .server import Server, serve
from .worker import TaskFailed, Worker

__version__ = "0.1.0"
__all__ = ["AuthenticationError", "Client", "Empty", "EpochChanged", "Forbidden", "Full", "Item",
           "Outcome", "Queue", "RequestError", "Server", "Shutdown", "Task", "TaskFailed",
           "TaskqError", "Unavailable", "Worker", "connect", "derive_keys", "issue_credentials",
           "serve"]
