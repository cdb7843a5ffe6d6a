"""Loom's Python SDK: talk to loomd over its RPC (ZeroMQ + protobuf).

    from loom_client import Client
    with Client("tcp://127.0.0.1:7400", token="...") as c:
        run = c.run("support.yaml", {"q": "Where is my order?"})
        print(run.state == loom_client.RUN_SUCCEEDED, run.outputs_json)

Messages are the protobuf classes generated from protocol/loom/v1/*.proto
when the package is built (loom_client.rpc, loom_client.envelope,
loom_client.worker); errors are typed (loom_client.errors)."""
from loom_client._pb.loom.v1 import envelope_pb2 as envelope
from loom_client._pb.loom.v1 import rpc_pb2 as rpc
from loom_client._pb.loom.v1 import worker_pb2 as worker
from loom_client.aio import AsyncClient, AsyncWatch
from loom_client.client import Client, Watch
from loom_client.errors import *  # noqa: F401,F403  (the typed errors)
from loom_client.errors import LoomError

__version__ = "0.1.0"

# The enums' values at top level: loom_client.RUN_SUCCEEDED, ...
for _enum in (rpc.RunState, rpc.StepState, rpc.RunEventKind, rpc.Objective, rpc.WorkerState,
              worker.DeviceKind):
    for _name, _value in _enum.items():
        globals()[_name] = _value
del _enum, _name, _value

FINAL_RUN_STATES = (rpc.RUN_SUCCEEDED, rpc.RUN_FAILED, rpc.RUN_CANCELLED)
