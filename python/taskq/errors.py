"""taskq's exceptions. Every message says what went wrong and what to do."""
import queue

# A get that timed out raises the standard library's queue.Empty, as the
# tutorial's queues do.
Empty = queue.Empty


class TaskqError(Exception):
    """Base of taskq's own errors."""


class AuthenticationError(TaskqError):
    """The authkey does not match the master's (the CURVE handshake failed)."""


class Unavailable(TaskqError):
    """No master answered in time."""


class Full(TaskqError, queue.Full):
    """The queue stayed at its limit (task_master --max-queue)."""


class Shutdown(TaskqError):
    """The master is stopping; a worker loop ends cleanly on it."""


class RequestError(TaskqError):
    """The master refused a request; code is the protocol's error code."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}" if message else code)
        self.code, self.message = code, message


class Forbidden(RequestError):
    """The master refused the request because the key is a worker's or a
    submitter's and its role may not do that (docs/PROTOCOL.md 2.5): a worker
    key only runs tasks, a submitter key only puts tasks and collects its
    jobs. The message names the operation and the role."""


def request_error(code: str, message: str) -> RequestError:
    """The exception for an error reply: Forbidden for "forbidden"."""
    return (Forbidden if code == "forbidden" else RequestError)(code, message)


class EpochChanged(TaskqError):
    """The master restarted without its journal: it no longer knows the
    tasks leased from its previous run, so their results cannot be sent."""
