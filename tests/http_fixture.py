#!/usr/bin/env python3
"""A web server for taskq's download tests, on 127.0.0.1 and a port the OS
picks (printed as the first line: "port N"). Then one line per request as it
arrives, "GET PATH" (PATH with its query), so a test can wait for a request
and count them. Standard library only.

  /data/SIZE/NAME      SIZE bytes: NAME and a newline, repeated (known content)
  /slow/MS/NAME        waits MS milliseconds, then a short body
  /gate/N/NAME         answers only once N requests to /gate/N/ are waiting at
                       once (a barrier), then a short body; 504 if they are not
                       all there within 60 s. Proves N downloads ran at once
                       without measuring time.
  /notfound            404
  /error500            500
  /loop                a redirect to itself, for ever
  /to-file             a redirect to file:///etc/passwd
  /big                 10 MiB with no Content-Length (cut off only by --max-bytes)
  /bigknown            10 MiB with its Content-Length
  anything else        200, the path (with its query) as the body
"""
import http.server
import socketserver
import sys
import threading
import time

print_lock = threading.Lock()
gates_lock = threading.Lock()
gates = {}  # N -> threading.Barrier(N)


def gate(n):
    with gates_lock:
        if n not in gates:
            gates[n] = threading.Barrier(n, timeout=60)
        return gates[n]


def data(name, size):
    unit = (name + "\n").encode()
    return (unit * (size // len(unit) + 1))[:size]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with print_lock:
            print("GET", self.path, flush=True)
        parts = self.path.split("/")
        if self.path.startswith("/data/") and len(parts) >= 4:
            self.send(200, data(parts[3], int(parts[2])), [("Content-Type", "application/octet-stream")])
        elif self.path.startswith("/slow/") and len(parts) >= 4:
            time.sleep(int(parts[2]) / 1000)
            self.send(200, b"slow " + parts[3].encode(), [("Content-Type", "text/plain")])
        elif self.path.startswith("/gate/") and len(parts) >= 4:
            try:
                gate(int(parts[2])).wait()
                self.send(200, b"gate " + parts[3].encode(), [("Content-Type", "text/plain")])
            except threading.BrokenBarrierError:
                self.send(504, b"not all requests arrived at once")
        elif self.path == "/notfound":
            self.send(404, b"no such thing")
        elif self.path == "/error500":
            self.send(500, b"broken")
        elif self.path == "/loop":
            self.send(302, b"", [("Location", "/loop")])
        elif self.path == "/to-file":
            self.send(302, b"", [("Location", "file:///etc/passwd")])
        elif self.path == "/big":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(160):
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True
        elif self.path == "/bigknown":
            self.send(200, b"y" * (10 << 20))
        else:
            self.send(200, self.path.encode(), [("Content-Type", "text/plain")])


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    server = Server(("127.0.0.1", 0), Handler)
    print("port", server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
