"""A FAKE, hostile loomd for test_worker_vs_hostile_fake_loomd.sh (Debian's
python3 + pyzmq + the protoc --python_out modules in $BUILD/gen/py).

  fake_loomd_hostile.py WORKER_BIN LOG

Binds a ROUTER on a free loopback port, starts a real loom-worker-cpu
against it, answers its Register, then sends it garbage headers, a wrong
protocol version, an undecodable payload, too many frames, a frame over the
payload limit, a payload that decodes to far more memory than the limit
(millions of empty repeated sub-messages) and a frame over libzmq's hard
cap. After each group it checks that the worker is still running and still
answers a well-formed Drain request. Exits 0 when the worker survived all
of it, else prints why and exits 1. The worker's log goes to LOG."""
import subprocess, sys, time
import zmq
from loom.v1 import envelope_pb2, worker_pb2

REPLY = 16


def env(method, rid, flags=0, version=1, status=0):
    return envelope_pb2.Envelope(version=version, request_id=rid, method=method, flags=flags,
                                 status=status).SerializeToString()


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def main(argv):
    worker_bin, log = argv[1], argv[2]
    ctx = zmq.Context()
    s = ctx.socket(zmq.ROUTER)
    s.setsockopt(zmq.LINGER, 0)
    s.bind("tcp://127.0.0.1:*")
    ep = s.getsockopt(zmq.LAST_ENDPOINT).decode()
    with open(log, "wb") as lf:
        w = subprocess.Popen([worker_bin, "--endpoint", ep, "--id", "victim", "--ops", "noop"],
                             stdout=lf, stderr=subprocess.STDOUT)
    try:
        run(s, w)
    finally:
        if w.poll() is None:
            w.terminate()
            try:
                w.wait(5)
            except subprocess.TimeoutExpired:
                w.kill()
    print("worker survived every hostile frame")


def recv(s, timeout_s, want=None):
    """Next message from the worker ([ident, header, ...]), optionally the
    first whose method is want; None on timeout."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if s.poll(int(max(1, (deadline - time.time()) * 1000))):
            f = s.recv_multipart()
            h = envelope_pb2.Envelope()
            h.ParseFromString(f[1])
            if want is None or h.method == want:
                return f, h
    return None


def alive(s, w, ident, rid, what):
    if w.poll() is not None:
        fail(f"worker exited ({w.returncode}) after {what}")
    s.send_multipart([ident, env("loom.v1.Worker/Drain", rid),
                      worker_pb2.DrainRequest(reason="probe").SerializeToString()])
    deadline = time.time() + 10
    while time.time() < deadline:
        r = recv(s, deadline - time.time(), "loom.v1.Worker/Drain")
        if r and r[1].request_id == rid and r[1].flags & REPLY:
            return
    fail(f"worker did not answer a valid Drain after {what}")


def run(s, w):
    r = recv(s, 20, "loom.v1.WorkerHub/Register")
    if not r:
        fail("no Register from the worker")
    ident, h = r[0][0], r[1]
    s.send_multipart([ident, env(h.method, h.request_id, REPLY),
                      worker_pb2.RegisterReply(worker_id="victim", heartbeat_interval_ms=100).SerializeToString()])
    alive(s, w, ident, 1000, "registration")

    a = "loom.v1.Worker/Assign"
    groups = {
        "garbage headers": [[b""], [b"\xff" * 64], [b"\x08\x02"], [bytes(range(256))]],
        "wrong protocol version": [[env(a, 7, version=2), b""], [env(a, 8, version=0)]],
        "undecodable payloads": [[env(a, 9), b"\xff\xff\xff\xff"],
                                 [env("loom.v1.Worker/CancelTask", 10), b"\x0a\xff\xff\xff\x7f"]],
        "too many frames": [[env(a, 11), b"", b"", b""]],
        "a 20 MiB payload frame": [[env(a, 12), b"\x00" * (20 << 20)]],
        # 7M empty AssignRequests in 14 MiB: each decodes to a whole struct,
        # far more than the decoder's 64 MiB bound (the default allocator
        # would take ~1 GiB and then run 7M tasks)
        "a decompression bomb": [[env("loom.v1.Worker/AssignBatch", 13), b"\x0a\x00" * (7 << 20)]],
    }
    rid = 2000
    for what, frames in groups.items():
        for f in frames:
            s.send_multipart([ident] + f)
        rid += 1
        alive(s, w, ident, rid, what)

    # over libzmq's hard cap (ZMQ_MAXMSGSIZE): the worker's libzmq drops the
    # connection and the worker reconnects (a new routing id) and heartbeats
    s.send_multipart([ident, env(a, 14), b"\x00" * (40 << 20)])
    deadline = time.time() + 20
    while time.time() < deadline:
        r = recv(s, deadline - time.time())
        if r and r[0][0] != ident:
            break
    else:
        fail("worker did not come back after an oversized frame")
    alive(s, w, r[0][0], 9000, "a 40 MiB frame")


if __name__ == "__main__":
    main(sys.argv)
