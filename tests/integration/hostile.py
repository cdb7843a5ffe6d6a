"""Hostile peers for test_hostile.sh (Debian's python3 + pyzmq + the
protoc --python_out modules in $BUILD/gen/py):

  garbage CLIENT_EP     send malformed frames to loomd's client endpoint
  foreign WORKER_EP ID  register as a worker, then send results for task ID
                        (owned by another worker) and for unknown tasks
"""
import os, random, sys, time
import zmq
from loom.v1 import envelope_pb2, worker_pb2

def env(method, rid, flags=0):
    e = envelope_pb2.Envelope(version=1, request_id=rid, method=method, flags=flags)
    return e.SerializeToString()

def garbage(ep):
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(ep)
    rnd = random.Random(7)
    frames = [
        [b""], [b"\xff" * 64], [os.urandom(300)], [b"\x08\x02"],              # bad header / version
        [env("loom.v1.Loom/Submit", 1), b"\xff\xff\xff\xff"],                   # undecodable payload
        [env("loom.v1.Loom/Nope", 2)],                                          # unknown method
        [env("loom.v1.Loom/Submit", 3), b"", b"", b""],                         # too many frames
        [env("loom.v1.Loom/Get", 4)],                                           # empty run id
    ]
    for _ in range(200):
        frames.append([bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 80)))])
    replies = 0
    for f in frames:
        s.send_multipart(f)
    deadline = time.time() + 3
    while time.time() < deadline:
        if s.poll(200):
            s.recv_multipart()
            replies += 1
        elif replies:
            break
    print("garbage sent:", len(frames), "replies:", replies)
    s.close()

def foreign(ep, task_id):
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(ep)
    prof = worker_pb2.DeviceProfile(kind=1, model_name="impostor", task_slots=1,
                                    supported_ops=["noop"])
    s.send_multipart([env("loom.v1.WorkerHub/Register", 1),
                      worker_pb2.RegisterRequest(worker_id="impostor", profile=prof).SerializeToString()])
    if not s.poll(5000):
        sys.exit("no RegisterReply")
    s.recv_multipart()
    batch = worker_pb2.ResultBatchRequest(results=[
        worker_pb2.ResultRequest(task_id=task_id, attempt=1, worker_id="impostor", ok=True,
                                 output_json='"hijacked"'),
        worker_pb2.ResultRequest(task_id="deadbeef", attempt=1, ok=True, output_json="1"),
    ])
    s.send_multipart([env("loom.v1.WorkerHub/ResultBatch", 0, 8), batch.SerializeToString()])
    # a unary Result for the same task must be answered accepted=false
    s.send_multipart([env("loom.v1.WorkerHub/Result", 2),
                      worker_pb2.ResultRequest(task_id=task_id, attempt=1, ok=True,
                                               output_json='"hijacked"').SerializeToString()])
    while s.poll(3000):
        parts = s.recv_multipart()
        e = envelope_pb2.Envelope.FromString(parts[0])
        if e.request_id == 2:
            r = worker_pb2.ResultReply.FromString(parts[1] if len(parts) > 1 else b"")
            print("unary result accepted:", r.accepted)
            sys.exit(1 if r.accepted else 0)
    sys.exit("no ResultReply")

if __name__ == "__main__":
    {"garbage": lambda: garbage(sys.argv[2]), "foreign": lambda: foreign(sys.argv[2], sys.argv[3])}[sys.argv[1]]()
