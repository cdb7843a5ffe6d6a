#!/usr/bin/python3
"""http_echo.py PORT_FILE — a real local HTTP/1.1 server for tool.http tests.

Binds 127.0.0.1 on a free port, writes the port to PORT_FILE, and answers
every method (GET POST PUT PATCH DELETE HEAD) with JSON describing the
request: {"method", "path", "headers" (lower-case names), "body" (text)}.
Paths steer the answer:
  /status/N   answer status N (still the echo body)
  /text       answer a text/plain body that is not JSON
  /big/N      answer N bytes of 'x'
  /slow/MS    wait MS milliseconds, then echo
  /flaky/KEY/N  answer 503 the first N times KEY is asked, then echo
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

flaky = {}
lock = threading.Lock()


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.command, self.path))

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        parts = self.path.strip("/").split("/")
        status, ctype = 200, "application/json"
        payload = json.dumps({"method": self.command, "path": self.path,
                              "headers": {k.lower(): v for k, v in self.headers.items()},
                              "body": body}).encode()
        if parts[0] == "status" and len(parts) > 1:
            status = int(parts[1])
        elif parts[0] == "text":
            ctype, payload = "text/plain", b"plain words, not JSON"
        elif parts[0] == "big" and len(parts) > 1:
            ctype, payload = "text/plain", b"x" * int(parts[1])
        elif parts[0] == "slow" and len(parts) > 1:
            time.sleep(int(parts[1]) / 1000.0)
        elif parts[0] == "flaky" and len(parts) > 2:
            with lock:
                seen = flaky.get(parts[1], 0)
                flaky[parts[1]] = seen + 1
            if seen < int(parts[2]):
                status = 503
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Echo-Method", self.command)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = answer


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    srv.daemon_threads = True
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
