#!/usr/bin/python3
"""Writes the seed corpus of fuzz_envelope (tests/fuzz/corpus/fuzz_envelope/)
from the .proto files: valid requests, replies, stream items and cancels of
several methods, plus the malformed cases the decoder must refuse.
Usage: PYTHONPATH=build/gen/py tests/fuzz/make_envelope_corpus.py"""
import os
import struct

from loom.v1 import envelope_pb2 as E
from loom.v1 import rpc_pb2 as R
from loom.v1 import worker_pb2 as W

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_envelope")


def frames(flags, *fs):
    """byte 0 = flags (bit0 routed, bit1 small limits), then [u16 len][bytes]."""
    out = bytes([flags])
    for f in fs:
        out += struct.pack("<H", len(f)) + f
    return out


def env(**kw):
    kw.setdefault("version", 1)
    return E.Envelope(**kw).SerializeToString()


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


os.makedirs(OUT, exist_ok=True)
sub = R.SubmitRequest(workflow_yaml="version: 1\nname: x\n", workflow_name="x.yaml",
                      inputs_json='{"q":"hi"}', sla_latency_ms=1000)
sub.labels.add(key="k", value="v")
h = E.Envelope(version=1, request_id=1, method="loom.v1.Loom/Submit", deadline_unix_ms=1767225600000)
h.metadata.add(key="authorization", value="loom1.cli.0." + "0" * 64)
write("submit_routed", frames(1, b"peer-1", h.SerializeToString(), sub.SerializeToString()))
write("submit_dealer", frames(0, h.SerializeToString(), sub.SerializeToString()))
ev = R.RunEvent(seq=3, run_id="r1", kind=R.RUN_EVENT_STEP_FINISHED, output_json='{"a":1}')
ev.plan.placements.add(step_id="s", op="llm.decode", device_kind=W.DEVICE_KIND_GPU)
write("stream_item", frames(0, env(request_id=2, flags=E.FLAG_REPLY | E.FLAG_STREAM), ev.SerializeToString()))
write("stream_end", frames(0, env(request_id=2, flags=E.FLAG_REPLY | E.FLAG_END_OF_STREAM,
                                  status=E.CANCELLED, status_message="cancelled")))
write("cancel", frames(1, b"p", env(request_id=2, flags=E.FLAG_CANCEL, method="loom.v1.Loom/Watch")))
err = E.Envelope(version=1, request_id=4, flags=E.FLAG_REPLY, status=E.INVALID_ARGUMENT,
                 status_message="bad")
err.error.message = "unknown step"
err.error.location = "a.yaml:3:5: steps.x"
write("error_reply", frames(0, err.SerializeToString()))
prof = W.DeviceProfile(kind=W.DEVICE_KIND_GPU, model_name="H100", arch="sm_90", compute_units=132,
                       memory_bytes=80 << 30, measured_gflops=5e4, loaded_models=["m"])
write("register", frames(1, b"w", env(request_id=5, method="loom.v1.WorkerHub/Register"),
                         W.RegisterRequest(worker_id="w", profile=prof).SerializeToString()))
asg = W.AssignRequest(task_id="t", run_id="r", op="tool.exec", input_json="{}", attempt=1)
asg.artifacts.add(sha256="ab", kind="ptx", target="sm_90")
write("assign", frames(0, env(request_id=6, method="loom.v1.Worker/Assign"), asg.SerializeToString()))
res = W.ResultRequest(task_id="t", attempt=1, ok=True, output=b"\x00\x01", output_json="{}")
res.timings.compute_ms = 1.5
write("result_small_limits", frames(3, b"w", env(request_id=7, method="loom.v1.WorkerHub/Result"),
                                    res.SerializeToString()))
# malformed
write("empty", bytes([1]))
write("routing_only", frames(1, b"peer"))
write("garbage", frames(1, b"p", b"\xde\xad\xbe\xef\xff\xff\xff"))
full = h.SerializeToString()
write("truncated", frames(1, b"p", full[:-5]))
write("wrong_version", frames(1, b"p", E.Envelope(version=7, request_id=9).SerializeToString()))
write("gib_claim", frames(1, b"p", b"\x08\x01\x1a\x80\x80\x80\x80\x04x"))
write("too_many_frames", frames(1, b"p", env(request_id=1, method="m"), b"a", b"b", b"c"))
write("empty_header", frames(1, b"p", b""))
write("many_steps", frames(0, env(request_id=1, method="m"), b"\x6a\x00" * 2000))
print("wrote", len(os.listdir(OUT)), "seeds to", OUT)
