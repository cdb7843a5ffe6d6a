#!/usr/bin/python3
"""openai_fake_server.py PORT_FILE — a FAKE OpenAI-compatible model server
(scripted answers, no model) for the protocol behaviour of Loom's endpoint
client: SSE streaming, retries, timeouts, errors. Binds 127.0.0.1 on a free
port and writes the port to PORT_FILE.

POST /v1/chat/completions, by "model":
  echo          answers the last user message, streamed word by word (the
                first delta has content null, as llama.cpp's server sends);
                without "stream" one JSON answer
  flaky         answers 429 (Retry-After: 0) to the first 2 requests, then as echo
  down          always 503
  slow          waits 30 s before answering
  crash         HTTP 200, one chunk, then data: {"error": {...}} mid-stream
  bad           400 with an OpenAI-style error body
  busy          as echo after 300 ms; tracks the most requests in flight
POST /v1/embeddings: [len(text), count of spaces, 1.0] per input
GET /stats: {"requests": [...bodies...], "auth": [...], "max_in_flight": N, "flaky_calls": N}
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"requests": [], "auth": [], "in_flight": 0, "max_in_flight": 0, "flaky_calls": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.command, self.path))

    def send_json(self, status, obj, extra=None):
        b = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(b)

    def do_GET(self):
        with lock:
            self.send_json(200, {k: state[k] for k in ("requests", "auth", "max_in_flight", "flaky_calls")})

    def chunk(self, obj):
        data = obj if isinstance(obj, str) else json.dumps(obj)
        self.wfile.write(b"data: " + data.encode() + b"\n\n")
        self.wfile.flush()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        req = json.loads(self.rfile.read(n) or b"{}")
        with lock:
            state["requests"].append(req)
            state["auth"].append(self.headers.get("Authorization"))
        if self.path.endswith("/embeddings"):
            inp = req["input"] if isinstance(req["input"], list) else [req["input"]]
            data = [{"index": i, "embedding": [float(len(t)), float(t.count(" ")), 1.0]} for i, t in enumerate(inp)]
            return self.send_json(200, {"data": data, "usage": {"prompt_tokens": 3}})
        model = req.get("model")
        if model == "flaky":
            with lock:
                state["flaky_calls"] += 1
                calls = state["flaky_calls"]
            if calls <= 2:
                return self.send_json(429, {"error": {"message": "rate limited, slow down"}}, {"Retry-After": "0"})
        if model == "down":
            return self.send_json(503, {"error": {"message": "overloaded"}})
        if model == "bad":
            return self.send_json(400, {"error": {"message": "max_tokens is too large", "type": "invalid_request_error"}})
        if model == "slow":
            time.sleep(30)
        if model == "busy":
            with lock:
                state["in_flight"] += 1
                state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
            time.sleep(0.3)
            with lock:
                state["in_flight"] -= 1
        text = [m for m in req["messages"] if m["role"] == "user"][-1]["content"]
        words = text.split(" ")
        if not req.get("stream"):
            return self.send_json(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                                     "finish_reason": "stop"}]})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.chunk({"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]})
        if model == "crash":
            self.chunk({"choices": [{"index": 0, "delta": {"content": words[0]}}]})
            self.chunk({"error": {"message": "the model crashed mid-answer", "code": 500}})
            return
        for i, w in enumerate(words):
            self.chunk({"choices": [{"index": 0, "delta": {"content": (" " if i else "") + w}}]})
        self.chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        self.chunk({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": len(words)}})
        self.chunk("[DONE]")
        self.close_connection = True


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
