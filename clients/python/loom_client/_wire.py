"""The Loom RPC framing (protocol/README.md), shared by the sync and asyncio
clients: a DEALER sends [Envelope, payload] and receives [Envelope,
payload?]; answers carry FLAG_REPLY and the request id; a stream sends
FLAG_STREAM items and ends with FLAG_END_OF_STREAM carrying the status."""
import os
import time

import zmq

from loom_client._pb.loom.v1 import envelope_pb2 as env_pb
from loom_client._pb.loom.v1 import rpc_pb2 as rpc
from loom_client.errors import DeadlineExceeded, InvalidArgument, error_for

SERVICE = "loom.v1.Loom/"
DEFAULT_ENDPOINT = "tcp://127.0.0.1:7400"

# method -> (request type, reply or stream item type, streaming)
METHODS = {
    "Submit": (rpc.SubmitRequest, rpc.SubmitReply, False),
    "Plan": (rpc.PlanRequest, rpc.PlanReply, False),
    "Watch": (rpc.WatchRequest, rpc.RunEvent, True),
    "Get": (rpc.GetRequest, rpc.GetReply, False),
    "List": (rpc.ListRequest, rpc.ListReply, False),
    "Cancel": (rpc.CancelRequest, rpc.CancelReply, False),
    "Retry": (rpc.RetryRequest, rpc.SubmitReply, False),
    "ListWorkers": (rpc.ListWorkersRequest, rpc.ListWorkersReply, False),
    "Health": (rpc.HealthRequest, rpc.HealthReply, False),
}

FINAL_RUN_STATES = (rpc.RUN_SUCCEEDED, rpc.RUN_FAILED, rpc.RUN_CANCELLED)


def make_socket(ctx, endpoint, server_public_key=None):
    """A DEALER connected to loomd; CURVE-encrypted when the server's Z85
    public key is given (the client's key pair is made per connection)."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if server_public_key:
        pub, sec = zmq.curve_keypair()
        sock.setsockopt(zmq.CURVE_SERVERKEY, server_public_key.encode())
        sock.setsockopt(zmq.CURVE_PUBLICKEY, pub)
        sock.setsockopt(zmq.CURVE_SECRETKEY, sec)
    sock.connect(endpoint)
    return sock


def endpoints(spec):
    """The loomd endpoints of "tcp://a:7400,tcp://b:7400" (failover)."""
    eps = [e.strip() for e in spec.split(",") if e.strip()]
    for e in eps:
        if "://" not in e:
            raise InvalidArgument("'%s' is not an endpoint (tcp://host:port; several "
                                  "separated by commas)" % e)
    if not eps:
        raise InvalidArgument("no loomd endpoint given")
    return eps


def monitor(sock):
    """A PAIR socket reporting when sock's connection is lost or refused."""
    return sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_CLOSED |
                                   zmq.EVENT_CONNECT_RETRIED)


def connection_lost(mon, endpoint):
    """Reads the monitor's waiting events: True when one is about endpoint."""
    from zmq.utils.monitor import recv_monitor_message

    lost = False
    while mon.poll(0):
        ev = recv_monitor_message(mon)
        addr = ev.get("endpoint", b"")
        if isinstance(addr, bytes):
            addr = addr.decode(errors="replace")
        if addr == endpoint:
            lost = True
    return lost


def standby_detail(e):
    """The error detail of a standby's answer ("standby; leader=URL" or
    "standby; no leader yet ..."), else None (protocol/README.md)."""
    if e.status == env_pb.UNAVAILABLE and e.HasField("error") and \
            e.error.detail.startswith("standby;"):
        return e.error.detail
    return None


def next_endpoint(eps, cur, detail):
    """Index of the loomd to try next: the leader named in detail (appended
    when not in the list), else the one after cur."""
    if detail and "leader=" in detail:
        lead = detail.split("leader=", 1)[1].split()[0].rstrip(";,")
        if "://" in lead and lead != eps[cur]:
            if lead not in eps:
                eps.append(lead)
            return eps.index(lead)
    return (cur + 1) % len(eps)


def settings(endpoint, token):
    """Defaults from the environment, as the loom CLI reads them."""
    return (endpoint or os.environ.get("LOOM_ENDPOINT") or DEFAULT_ENDPOINT,
            token if token is not None else os.environ.get("LOOM_AUTH_TOKEN"))


def request_frames(method, request_id, payload, token, timeout, flags=0):
    e = env_pb.Envelope(version=1, request_id=request_id, method=SERVICE + method, flags=flags)
    if timeout is not None and timeout > 0 and not flags:
        e.deadline_unix_ms = int((time.time() + timeout) * 1000)
    if token and not flags:
        e.metadata.add(key="authorization", value=token)
    frames = [e.SerializeToString()]
    if payload is not None:
        frames.append(payload.SerializeToString())
    return frames


def cancel_frames(method, request_id):
    return request_frames(method, request_id, None, None, None, flags=env_pb.FLAG_CANCEL)


def parse(frames):
    """(Envelope, payload bytes) of a received message, or None when it is
    not an answer (garbage is dropped, never raised)."""
    e = env_pb.Envelope()
    try:
        e.ParseFromString(frames[0])
    except Exception:
        return None
    if not e.flags & env_pb.FLAG_REPLY:
        return None
    return e, (frames[1] if len(frames) > 1 else b"")


def outcome(e, payload, reply_type):
    """("item" | "end" | "reply", message or None) for one answer; raises
    the typed error of a failed one."""
    if e.status != env_pb.OK:
        raise error_for(e.status, e.status_message, e.error if e.HasField("error") else None)
    if e.flags & env_pb.FLAG_STREAM:
        m = reply_type()
        m.ParseFromString(payload)
        return "item", m
    if e.flags & env_pb.FLAG_END_OF_STREAM:
        return "end", None
    m = reply_type()
    m.ParseFromString(payload)
    return "reply", m


def deadline_error(method):
    return DeadlineExceeded("%s%s: deadline passed" % (SERVICE, method))


def workflow_source(workflow, name):
    """(yaml text, name) from a path, a YAML string or a file object."""
    if hasattr(workflow, "read"):
        return workflow.read(), name or getattr(workflow, "name", "workflow.yaml")
    text = str(workflow)
    if "\n" not in text and os.path.exists(text):
        with open(text) as f:
            return f.read(), name or os.path.basename(text)
    if "\n" not in text:
        raise InvalidArgument("workflow: no such file '%s' (pass a path or YAML text)" % text)
    return text, name or "workflow.yaml"


def submit_request(workflow, inputs, name, idempotency_key, labels, sla_latency_ms, objective):
    import json

    yaml_text, wf_name = workflow_source(workflow, name)
    rq = rpc.SubmitRequest(workflow_yaml=yaml_text, workflow_name=wf_name,
                           inputs_json=json.dumps(inputs or {}),
                           idempotency_key=idempotency_key or "",
                           sla_latency_ms=sla_latency_ms or 0, objective=objective or 0)
    for k, v in (labels or {}).items():
        rq.labels.add(key=str(k), value=str(v))
    return rq


def list_request(state, workflow_name, limit, page_token, tenant, labels, submitted_after_ms,
                 submitted_before_ms):
    """labels: {key: value}, runs carrying every one; times: ms since the epoch."""
    return rpc.ListRequest(limit=limit, page_token=page_token, state=state or 0,
                           workflow_name=workflow_name or "", tenant=tenant or "",
                           labels=",".join("%s=%s" % kv for kv in (labels or {}).items()),
                           submitted_after_unix_ms=int(submitted_after_ms or 0),
                           submitted_before_unix_ms=int(submitted_before_ms or 0))


def plan_request(workflow, inputs, name, sla_latency_ms, objective, fleet_yaml):
    import json

    yaml_text, wf_name = workflow_source(workflow, name)
    return rpc.PlanRequest(workflow_yaml=yaml_text, workflow_name=wf_name,
                           inputs_json=json.dumps(inputs or {}),
                           sla_latency_ms=sla_latency_ms or 0, objective=objective or 0,
                           fleet_yaml=fleet_yaml or "")
