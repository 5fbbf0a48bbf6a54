"""One peer's connection to the master: the socket, the handshake watch,
hello/welcome and the epoch (docs/PROTOCOL.md sections 1, 2.4, 4). The
client and the worker both use it.

Thread: a Session is used by one thread at a time (ZeroMQ sockets are not
thread-safe).
"""
import os
import secrets
import socket as _socket
import sys
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from . import codec
from .errors import AuthenticationError, Shutdown, Unavailable, request_error
from .keys import derive_keys

DEFAULT_PORT = 5000
_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
           | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
_EVENTS = _FAILED | zmq.EVENT_HANDSHAKE_SUCCEEDED
# Watched too by a worker given several masters: one that refuses the TCP
# connection at start is passed over at once (Session.refused).
_TCP_EVENTS = zmq.EVENT_CONNECTED | zmq.EVENT_CONNECT_RETRIED
# A wrong master key fails the handshake again on every reconnect (~100 ms
# apart); after this many failures in a row, none succeeding, give up.
_MAX_FAILED_HANDSHAKES = 3


def _bad(server, why):
    # The same words as task_worker's (client/endpoint.cc).
    return ValueError(f"invalid server address {server!r}: {why}")


def _parse_address(server) -> tuple[str, int]:
    """(host, port) of one master, not looked up; host bracketed for IPv6."""
    if isinstance(server, tuple):
        host, port = server
        host = host or "127.0.0.1"  # BaseManager's ('', port)
    else:
        if not server:
            raise _bad(server, "it is empty; give HOST, HOST:PORT or tcp://HOST:PORT")
        text = server
        if "," in text:
            # Only a Worker moves between masters (parse_server_list).
            raise _bad(server, "a client connects to one master (only taskq.Worker takes a "
                               "comma-separated list of masters); give HOST, HOST:PORT or "
                               "tcp://HOST:PORT")
        if "://" in text:
            scheme, text = text.split("://", 1)
            if scheme != "tcp":
                raise _bad(server, "a taskq master is reached over tcp: give HOST, HOST:PORT "
                                   "or tcp://HOST:PORT")
            text = text.rstrip("/")
        host, port = text, DEFAULT_PORT
        if text.startswith("["):
            end = text.find("]")
            if end < 0:
                raise _bad(server, "missing ']'")
            host, rest = text[:end + 1], text[end + 1:]
            if rest:
                port = rest.lstrip(":")
        elif text.count(":") > 1:
            raise _bad(server, "write IPv6 addresses as [ADDR]:PORT")
        elif ":" in text:
            host, port = text.rsplit(":", 1)
        if not host:
            raise _bad(server, "the host is empty")
        bare = host.strip("[]")
        if not all(c.isascii() and (c.isalnum() or c in "-._" or (host.startswith("[") and c == ":"))
                   for c in bare):
            raise _bad(server, "a host name has only letters, digits, '-' and '.'; give HOST, "
                               "HOST:PORT or tcp://HOST:PORT")
    try:
        port = int(port)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise _bad(server, "the port must be 1..65535, as in 127.0.0.1:5000") from None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host, port


def _looked_up(host: str, port: int) -> tuple[str, str]:
    """("tcp://HOST:PORT", "HOST:PORT") once the host resolves."""
    try:  # libzmq would retry a name that resolves to nothing, silently, for ever
        _socket.getaddrinfo(host.strip("[]"), port, type=_socket.SOCK_STREAM)
    except _socket.gaierror as e:
        if e.errno != _socket.EAI_AGAIN:  # no answer now (no network yet): let libzmq retry
            raise ValueError(f"cannot resolve {host}: {e.strerror}; give the master's host name "
                             "or IP address") from None
    return f"tcp://{host}:{port}", f"{host}:{port}"


def parse_server(server) -> tuple[str, str]:
    """("tcp://HOST:PORT", "HOST:PORT") from "HOST[:PORT]", "tcp://HOST:PORT",
    "[IPv6]:PORT" or a (host, port) tuple as BaseManager takes it. A bad
    address is a ValueError whose message says what to give; so is a list of
    masters ("A,B"), which only a Worker takes (parse_server_list)."""
    return _looked_up(*_parse_address(server))


# What C's isspace() takes for a space, as client/endpoint.cc trims elements.
_SPACES = " \t\n\v\f\r"


def parse_server_list(server) -> list[tuple[str, str]]:
    """The masters of "HOST[:PORT][,HOST[:PORT]...]" (taskq.Worker, as
    task_worker --server takes it, client/endpoint.cc ParseServerList), in
    the order given, each as parse_server returns it. Each element as
    parse_server takes it, spaces around it ignored; without a comma,
    exactly parse_server (a (host, port) tuple too). A ValueError names the
    element for an empty one ("a,,b", "a,") and for a master given twice
    (same host, whatever its case, and same port once the default applies)."""
    if not isinstance(server, str) or "," not in server:
        return [parse_server(server)]
    found = []
    for n, element in enumerate(server.split(","), 1):
        element = element.strip(_SPACES)
        if not element:
            raise ValueError(f"invalid server list {server!r}: master {n} is empty; give "
                             "HOST[:PORT],HOST[:PORT]... with no empty element between the "
                             "commas")
        host, port = _parse_address(element)  # its sentence names the element
        if any(h.lower() == host.lower() and p == port for h, p in found):
            raise ValueError(f"invalid server list {server!r}: it names {host}:{port} twice; "
                             "give each master once")
        found.append((host, port))
    # Looked up once the whole list reads well, as task_worker does.
    return [_looked_up(host, port) for host, port in found]


def resolve_authkey(authkey) -> bytes:
    """The authkey as bytes: the argument, else TASKQ_AUTHKEY. A worker's or
    submitter's key (taskq keys) is taken the same way."""
    if authkey is None:
        authkey = os.environb.get(b"TASKQ_AUTHKEY", b"")
    if isinstance(authkey, str):
        authkey = authkey.encode()
    if not authkey:
        raise ValueError("no authkey: pass authkey=b'...' or set TASKQ_AUTHKEY")
    return bytes(authkey)


def default_name(prefix: str) -> str:
    return f"{prefix}-{_socket.gethostname()}-{os.getpid()}"


class Session:
    """Connects to one master with keys derived from the authkey. Given
    several=True, server may list masters ("A,B,C", parse_server_list): the
    session is with one at a time, the one point_to() chose (the first at
    start), and watches whether it refuses the TCP connection (refused)."""

    def __init__(self, server, authkey=None, *, role="client", name=None,
                 heartbeat_ms=0, kinds=(), capacity=0, several=False):
        self.masters = parse_server_list(server) if several else [parse_server(server)]
        self.endpoint, self.display = self.masters[0]
        self._watch_tcp = len(self.masters) > 1
        self.tcp_connected = self.refused = False
        self.keys = derive_keys(resolve_authkey(authkey))
        self.role, self.name = role, name or default_name("py-" + role)
        self.heartbeat_ms, self.kinds, self.capacity = heartbeat_ms, list(kinds), capacity
        self.session_id = secrets.randbits(64) or 1
        self.ctx = zmq.Context.instance()
        self.sock = self.monitor = None
        self.welcome = None
        self._rid = 0
        self._failed_handshakes = 0
        self.last_heard = time.monotonic()

    # --- the socket ---------------------------------------------------------

    def point_to(self, i):
        """The next open() connects to master i of the list."""
        self.endpoint, self.display = self.masters[i]

    def open(self):
        """A new DEALER, connected (libzmq connects in the background)."""
        self.close_socket()
        s = self.ctx.socket(zmq.DEALER)
        s.linger = 1000
        s.curve_serverkey = self.keys.master_public
        s.curve_publickey = self.keys.client_public
        s.curve_secretkey = self.keys.client_secret
        s.maxmsgsize = codec.MAX_FRAME
        s.reconnect_ivl, s.reconnect_ivl_max = 100, 2000
        s.handshake_ivl = 5000
        s.heartbeat_ivl, s.heartbeat_timeout = 1000, 5000
        s.ipv6 = "[" in self.endpoint
        s.sndhwm = s.rcvhwm = 100000
        # A wrong authkey shows only as monitor events (PROTOCOL 2.4).
        self.monitor = s.get_monitor_socket(_EVENTS | (_TCP_EVENTS if self._watch_tcp else 0))
        self.sock = s
        self._failed_handshakes = 0
        self.tcp_connected = self.refused = False
        s.connect(self.endpoint)

    def close_socket(self, linger_ms=None):
        if self.sock is None:
            return
        # Stop monitoring before the monitor's reading end closes, or libzmq
        # may block writing events nobody reads.
        try:
            self.sock.disable_monitor()
        except zmq.ZMQError:
            pass
        self.monitor.close(linger=0)
        self.sock.close(linger=linger_ms)
        self.sock = self.monitor = None

    def next_rid(self) -> int:
        self._rid += 1
        return self._rid

    def send(self, msg: dict):
        self.sock.send(codec.encode(msg), copy=False)

    def send_raw(self, frame: bytes):
        self.sock.send(frame, copy=False)

    def poll(self, timeout_s, fds=()):
        """Waits up to timeout_s for the socket or one of fds; returns
        (socket readable, readable fds). Raises AuthenticationError when the
        handshake keeps failing."""
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self.monitor, zmq.POLLIN)
        for fd in fds:
            poller.register(fd, zmq.POLLIN)
        ready = dict(poller.poll(max(0, int(timeout_s * 1000))))
        if self.monitor in ready:
            self._read_monitor()
        return self.sock in ready, [fd for fd in fds if fd in ready]

    def _read_monitor(self):
        while self.monitor.poll(0):
            ev = recv_monitor_message(self.monitor)
            if ev["event"] == zmq.EVENT_CONNECTED:
                self.tcp_connected = True
                continue
            if ev["event"] == zmq.EVENT_CONNECT_RETRIED:
                # Also follows a failed handshake: only a master that never
                # accepted TCP refused it.
                self.refused = self.refused or not self.tcp_connected
                continue
            if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._failed_handshakes = 0
                continue
            self._failed_handshakes += 1
            if (ev["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH
                    or self._failed_handshakes >= _MAX_FAILED_HANDSHAKES):
                raise AuthenticationError(
                    f"authentication failed: the authkey does not match the master at "
                    f"{self.display}")

    def recv(self):
        """The next message from the master, or None if none is waiting."""
        try:
            frame = self.sock.recv(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return None
        self.last_heard = time.monotonic()
        try:
            return codec.decode(frame.buffer)
        except ValueError as e:
            # Only a broken master sends one; skip it as an unknown message.
            print(f"taskq: {e}; skipped", file=sys.stderr)
            return {"op": "(undecodable)"}

    # --- hello and welcome --------------------------------------------------

    def hello_message(self, holding=()) -> dict:
        return {"op": "hello", "v": 1, "role": self.role, "name": self.name,
                "capacity": self.capacity, "session": self.session_id,
                "heartbeat_ms": self.heartbeat_ms, "kinds": self.kinds,
                "holding": list(holding)}

    def on_welcome(self, msg):
        self.welcome = msg

    @property
    def epoch(self) -> int:
        """Names the task ids (PROTOCOL 4.1); missing or 0 means instance."""
        w = self.welcome or {}
        return w.get("epoch") or w.get("instance", 0)

    def handshake(self, timeout_s, holding=()):
        """Says hello and waits for welcome, skipping what else comes (late
        replies). Raises Unavailable, AuthenticationError, Shutdown, or
        Forbidden (a worker key saying hello as a client, or the reverse)."""
        self.send(self.hello_message(holding))
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unavailable(
                    f"no taskq master answered at {self.display} within {timeout_s:g} s: "
                    "is task_master running there, on that port?")
            readable, _ = self.poll(left)
            while readable:
                msg = self.recv()
                if msg is None:
                    break
                op = msg["op"]
                if op == "welcome":
                    self.on_welcome(msg)
                    return msg
                if op == "shutdown":
                    raise Shutdown(f"the master at {self.display} is shutting down "
                                   f"({msg.get('reason', '')})")
                if op == "error" and msg.get("rid", 0) == 0 and msg.get("code") != "hello_required":
                    raise request_error(msg.get("code", ""), msg.get("message", ""))

    def goodbye(self, release=()):
        if self.sock is not None and self.welcome is not None:
            try:
                self.send({"op": "goodbye", "release": list(release)})
            except zmq.ZMQError:
                pass
