#!/usr/bin/python3
"""tenant_probe.py ENDPOINT SERVER_PUB TOKEN RUN_ID — calls Get, List,
Watch and Cancel on RUN_ID over CURVE as the holder of TOKEN ("-" = no
token) and prints one JSON object: each call's status name, and for List
whether RUN_ID was among the runs listed. Written from the .proto files
alone (like tests/protocol/python_client.py); used by test_multihost.sh."""
import json
import sys
import time

import zmq
from loom.v1 import envelope_pb2 as E
from loom.v1 import rpc_pb2 as R

ep, pub_file, token, run = sys.argv[1:5]
server_pub = open(pub_file).read().split()[0].encode()
sock = zmq.Context.instance().socket(zmq.DEALER)
sock.setsockopt(zmq.LINGER, 0)
sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
sock.curve_serverkey = server_pub
sock.connect(ep)
next_id = [0]


def call(method, req):
    """First answer to the request: (status name, payload bytes or None)."""
    next_id[0] += 1
    rid = next_id[0]
    e = E.Envelope(version=1, request_id=rid, method=method,
                   deadline_unix_ms=int(time.time() * 1000) + 20000)
    if token != "-":
        e.metadata.add(key="authorization", value=token)
    sock.send_multipart([e.SerializeToString(), req.SerializeToString()])
    deadline = time.time() + 20
    while time.time() < deadline:
        if not sock.poll(1000):
            continue
        frames = sock.recv_multipart()
        r = E.Envelope()
        r.ParseFromString(frames[0])
        if r.request_id == rid:
            return E.StatusCode.Name(r.status), frames[1] if len(frames) > 1 else None
    return "TIMEOUT", None


out = {}
out["get"], _ = call("loom.v1.Loom/Get", R.GetRequest(run_id=run))
out["list"], payload = call("loom.v1.Loom/List", R.ListRequest(limit=1000))
if payload is not None:
    lr = R.ListReply()
    lr.ParseFromString(payload)
    out["listed"] = any(r.run_id == run for r in lr.runs)
out["watch"], _ = call("loom.v1.Loom/Watch", R.WatchRequest(run_id=run))
out["cancel"], _ = call("loom.v1.Loom/Cancel", R.CancelRequest(run_id=run, reason="probe"))
print(json.dumps(out))
