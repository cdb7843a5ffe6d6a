#!/usr/bin/python3
"""A Loom client written from the .proto files alone (protoc --python_out)
plus pyzmq: proves another language can talk to loomd. Run by
test_python.sh against loom-test-server; exits non-zero on any mismatch.

Framing (protocol/README.md): a DEALER sends [Envelope, payload] and
receives [Envelope, payload?]; replies carry FLAG_REPLY and the request id."""
import sys
import time

import zmq
from loom.v1 import envelope_pb2 as env_pb
from loom.v1 import rpc_pb2 as rpc
from loom.v1 import worker_pb2 as wrk


class Client:
    def __init__(self, endpoint, token=None):
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.next_id = 1
        self.token = token

    def send(self, method, payload=None, flags=0, request_id=None, timeout_ms=5000, version=1):
        rid = request_id if request_id is not None else self.next_id
        self.next_id += 1
        e = env_pb.Envelope(version=version, request_id=rid, method=method, flags=flags,
                            deadline_unix_ms=int(time.time() * 1000) + timeout_ms)
        if self.token:
            e.metadata.add(key="authorization", value=self.token)
        frames = [e.SerializeToString()]
        if payload is not None:
            frames.append(payload.SerializeToString())
        self.sock.send_multipart(frames)
        return rid

    def recv(self, rid, timeout_ms=5000):
        """Next message answering request rid: (Envelope, payload bytes)."""
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0 or not self.sock.poll(left):
                raise TimeoutError("no reply for request %d" % rid)
            frames = self.sock.recv_multipart()
            e = env_pb.Envelope()
            e.ParseFromString(frames[0])
            assert e.flags & env_pb.FLAG_REPLY, e
            if e.request_id == rid:
                return e, (frames[1] if len(frames) > 1 else b"")

    def call(self, method, req, reply_type):
        rid = self.send(method, req)
        e, payload = self.recv(rid)
        if e.status != env_pb.OK:
            return e.status, e.status_message
        rep = reply_type()
        rep.ParseFromString(payload)
        return env_pb.OK, rep


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)


def stats(c):
    st, run = c.call("loom.test.Test/Stats", None, rpc.Run)
    return {l.key: l.value for l in run.labels}


def main():
    c = Client(sys.argv[1])
    st, h = c.call("loom.v1.Loom/Health", rpc.HealthRequest(), rpc.HealthReply)
    check(st == env_pb.OK and h.status == "SERVING" and h.protocol_version == 1, "Health")

    req = rpc.SubmitRequest(workflow_yaml="version: 1\nname: py\n", workflow_name="py.yaml",
                            inputs_json='{"q": 1}', sla_latency_ms=900,
                            objective=rpc.OBJECTIVE_LATENCY)
    req.labels.add(key="answer", value="llm.generate")
    st, rep = c.call("loom.v1.Loom/Submit", req, rpc.SubmitReply)
    check(st == env_pb.OK and rep.run_id.startswith("run-") and rep.plan.notes[0] == "py.yaml"
          and rep.plan.placements[0].op == "llm.generate"
          and rep.plan.placements[0].device_kind == wrk.DEVICE_KIND_GPU
          and rep.plan.sla_latency_ms == 900, "Submit round trip")

    st, msg = c.call("loom.v1.Loom/Get", rpc.GetRequest(run_id="missing"), rpc.GetReply)
    check(st == env_pb.NOT_FOUND and "not found" in msg, "Get missing -> NOT_FOUND")

    st, rep = c.call("loom.v1.Loom/ListWorkers",
                     rpc.ListWorkersRequest(kind=wrk.DEVICE_KIND_GPU), rpc.ListWorkersReply)
    check(st == env_pb.OK and rep.workers[0].profile.arch == "sm_90"
          and rep.workers[0].profile.memory_bytes == 80 << 30, "ListWorkers")

    # Server streaming: items then end-of-stream with status OK.
    rid = c.send("loom.v1.Loom/Watch", rpc.WatchRequest(run_id="count:3"))
    seqs = []
    while True:
        e, payload = c.recv(rid)
        if e.flags & env_pb.FLAG_STREAM:
            ev = rpc.RunEvent()
            ev.ParseFromString(payload)
            seqs.append(ev.seq)
            continue
        check(e.flags & env_pb.FLAG_END_OF_STREAM and e.status == env_pb.OK, "Watch ends OK")
        break
    check(seqs == [1, 2, 3], "Watch items in order")

    # Cancellation: the server sees the cancel frame and ends with CANCELLED.
    before = int(stats(c)["cancels"])
    rid = c.send("loom.v1.Loom/Watch", rpc.WatchRequest(run_id="forever"))
    e, _ = c.recv(rid)
    check(e.flags & env_pb.FLAG_STREAM, "Watch forever streams")
    c.send("loom.v1.Loom/Watch", flags=env_pb.FLAG_CANCEL, request_id=rid)
    while True:
        e, _ = c.recv(rid)
        if not e.flags & env_pb.FLAG_STREAM:
            break
    check(e.status == env_pb.CANCELLED, "cancelled stream ends with CANCELLED")
    check(int(stats(c)["cancels"]) == before + 1, "server counted the cancel")

    # Wrong protocol version -> FAILED_PRECONDITION, server keeps serving.
    rid = c.send("loom.v1.Loom/Health", rpc.HealthRequest(), version=9)
    e, _ = c.recv(rid)
    check(e.status == env_pb.FAILED_PRECONDITION, "wrong version -> FAILED_PRECONDITION")
    st, h = c.call("loom.v1.Loom/Health", rpc.HealthRequest(), rpc.HealthReply)
    check(st == env_pb.OK, "still serving")
    print("python interop: all checks passed")


if __name__ == "__main__":
    main()
