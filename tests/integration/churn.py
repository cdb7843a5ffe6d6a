#!/usr/bin/python3
"""Churn driver: real loomd and loom-worker-cpu processes on loopback, runs
of a two-step tool.exec chain, and kill -9s while they run.

  churn.py workers --runs 100 --kills 12   worker kill -9s, each restarted with its --id
  churn.py loomd --runs 60 --kills 2       loomd kill -9s (with --db), workers left running

Each step's tool cooperates through LOOM_TASK_KEY (the stable idempotency
key): it appends "start KEY" / "done KEY" to an effects file, and when it
finds "done KEY" already there it does nothing but note "again KEY" (its
step was executed again after its tool had finished). The figures printed
come from that file and from Get:

  runs ok          runs that succeeded (all must)
  effects once     step instances whose effect happened exactly once (all must)
  interrupted      step instances started more than once (a tool that a kill hit while
                   running ran again: its worker did not come back within the adoption grace)
  again            executions after the tool had finished (must be none: a finished tool's
                   result survives its worker in the spool, workers/common/spool.h)
  max attempt      highest attempt of any step (attempts count executions)

Exits 1 when a must fails. Uses /usr/bin/python3 with Debian's zmq and
protobuf and the modules generated from protocol/loom/v1 (build/gen/py)."""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("BUILD", os.path.join(ROOT, "build")))
sys.path.insert(0, os.path.join(BUILD, "gen", "py"))

import zmq  # noqa: E402
from loom.v1 import envelope_pb2 as env_pb  # noqa: E402
from loom.v1 import rpc_pb2 as rpc  # noqa: E402

TOOL = r'''k=$LOOM_TASK_KEY; f="$0/effects"
if grep -qxF "done $k" "$f" 2>/dev/null; then echo "again $k" >> "$f"; echo '{"v": 1}'; exit 0; fi
echo "start $k" >> "$f"; sleep 0.2; echo "done $k" >> "$f"; echo '{"v": 1}' '''

WORKFLOW = """version: 1
name: churn
inputs:
  dir: string
steps:
  a:
    op: tool.exec
    argv: [sh, -c, %(tool)s, "${inputs.dir}"]
  b:
    op: tool.exec
    needs: [a]
    argv: [sh, -c, %(tool)s, "${inputs.dir}"]
outputs:
  b: ${steps.b.output.v}
""" % {"tool": json.dumps(TOOL)}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Client:
    """Unary calls from the .proto files alone; retried while loomd is down."""

    def __init__(self, endpoint):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.rid = 0

    def call(self, method, req, reply_type, timeout_ms=5000):
        self.rid += 1
        e = env_pb.Envelope(version=1, request_id=self.rid, method="loom.v1.Loom/" + method,
                            deadline_unix_ms=int(time.time() * 1000) + timeout_ms)
        self.sock.send_multipart([e.SerializeToString(), req.SerializeToString()])
        end = time.monotonic() + timeout_ms / 1000
        while True:
            left = int((end - time.monotonic()) * 1000)
            if left <= 0 or not self.sock.poll(left):
                return None, "timeout"
            f = self.sock.recv_multipart()
            h = env_pb.Envelope()
            h.ParseFromString(f[0])
            if h.request_id != self.rid:
                continue
            if h.status != env_pb.OK:
                return None, h.status_message
            r = reply_type()
            r.ParseFromString(f[1] if len(f) > 1 else b"")
            return r, None


class Cluster:
    def __init__(self, tmp, db=None, heartbeat_ms=500):
        self.tmp, self.db, self.hb = tmp, db, heartbeat_ms
        self.cep = "tcp://127.0.0.1:%d" % free_port()
        self.wep = "tcp://127.0.0.1:%d" % free_port()
        self.loomd = None
        self.workers = {}
        self.logs = []

    def _log(self, name):
        f = open(os.path.join(self.tmp, name + ".log"), "ab")
        self.logs.append(f)
        return f

    def start_loomd(self):
        ready = os.path.join(self.tmp, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        cmd = [os.path.join(BUILD, "bin", "loomd"), "--client", self.cep, "--workers", self.wep,
               "--ready-file", ready, "--heartbeat-ms", str(self.hb)]
        if self.db:
            cmd += ["--db", self.db]
        self.loomd = subprocess.Popen(cmd, stdout=self._log("loomd"), stderr=subprocess.STDOUT)
        end = time.monotonic() + 60
        while not os.path.exists(ready):
            if time.monotonic() > end or self.loomd.poll() is not None:
                raise SystemExit("loomd did not start (see %s/loomd.log)" % self.tmp)
            time.sleep(0.05)

    def start_worker(self, wid):
        self.workers[wid] = subprocess.Popen(
            [os.path.join(BUILD, "bin", "loom-worker-cpu"), "--endpoint", self.wep, "--id", wid,
             "--slots", "2"], cwd=ROOT, stdout=self._log(wid), stderr=subprocess.STDOUT,
            env=dict(os.environ, LOOM_SPOOL_DIR=os.path.join(self.tmp, "spool")))

    def stop(self):
        for p in [self.loomd] + list(self.workers.values()):
            if p and p.poll() is None:
                p.kill()
        for p in [self.loomd] + list(self.workers.values()):
            if p:
                p.wait()
        for f in self.logs:
            f.close()


def wait_final(cli, ids, limit_s):
    """Polls Get until every run is final; returns {id: Run}."""
    final = {}
    end = time.monotonic() + limit_s
    while len(final) < len(ids) and time.monotonic() < end:
        for rid in ids:
            if rid in final:
                continue
            r, err = cli.call("Get", rpc.GetRequest(run_id=rid), rpc.GetReply)
            if r and r.run.state in (rpc.RUN_SUCCEEDED, rpc.RUN_FAILED, rpc.RUN_CANCELLED):
                final[rid] = r.run
        time.sleep(0.2)
    return final


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["workers", "loomd"])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--kills", type=int, default=12)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--db", help="PostgreSQL URL (loomd mode)")
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    tmp = tempfile.mkdtemp(prefix="loom-churn.")
    fx = os.path.join(tmp, "fx")
    os.mkdir(fx)
    c = Cluster(tmp, db=a.db)
    ok = False
    try:
        c.start_loomd()
        for i in range(a.workers):
            c.start_worker("kw%d" % i)
        cli = Client(c.cep)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r, _ = cli.call("ListWorkers", rpc.ListWorkersRequest(), rpc.ListWorkersReply)
            if r and len(r.workers) == a.workers:
                break
            time.sleep(0.1)
        ids = []
        for i in range(a.runs):
            r, err = cli.call("Submit", rpc.SubmitRequest(
                workflow_yaml=WORKFLOW, workflow_name="churn.yaml",
                inputs_json=json.dumps({"dir": fx})), rpc.SubmitReply)
            if not r:
                raise SystemExit("submit %d failed: %s" % (i, err))
            ids.append(r.run_id)
        t0 = time.monotonic()
        for k in range(a.kills):
            if a.mode == "workers":
                time.sleep(rnd.uniform(0.3, 0.7))
                wid = rnd.choice(sorted(c.workers))
                c.workers[wid].kill()  # SIGKILL
                c.workers[wid].wait()
                c.start_worker(wid)
            else:
                time.sleep(rnd.uniform(1.0, 2.0))
                c.loomd.send_signal(signal.SIGKILL)
                c.loomd.wait()
                time.sleep(rnd.uniform(0.2, 1.0))  # workers go on meanwhile
                c.start_loomd()
        churn_s = time.monotonic() - t0
        final = wait_final(cli, ids, 300)
        runs_ok = sum(1 for r in final.values() if r.state == rpc.RUN_SUCCEEDED)
        max_attempt = max((s.attempt for r in final.values() for s in r.steps), default=0)
        lines = open(os.path.join(fx, "effects")).read().split("\n")
        count = {}
        for ln in lines:
            if ln:
                what, key = ln.split(" ", 1)
                count.setdefault(key, {"start": 0, "done": 0, "again": 0})[what] += 1
        steps = 2 * a.runs
        once = sum(1 for v in count.values() if v["done"] == 1)
        interrupted = sum(1 for v in count.values() if v["start"] > 1)
        again = sum(v["again"] for v in count.values())
        print("churn %s: %d runs, %d kills in %.1f s, %d workers x 2 slots" %
              (a.mode, a.runs, a.kills, churn_s, a.workers))
        print("  runs ok       %d / %d" % (runs_ok, a.runs))
        print("  effects once  %d / %d step instances" % (once, steps))
        print("  interrupted   %d (started again after a kill hit them running)" % interrupted)
        print("  again         %d (executed again after their tool had finished)" % again)
        print("  max attempt   %d" % max_attempt)
        bad = [rid for rid in ids if rid not in final or final[rid].state != rpc.RUN_SUCCEEDED]
        for rid in bad[:5]:
            r = final.get(rid)
            print("  not ok: %s %s" % (rid, r.error.message if r else "not final"))
        ok = runs_ok == a.runs and once == steps and len(count) == steps
        if a.mode == "loomd":  # workers never died: nothing may run twice
            ok = ok and interrupted == 0 and again == 0
        else:  # a finished tool's result survives its worker (spool): never run again
            ok = ok and again == 0
        print("ok" if ok else "FAIL")
    finally:
        c.stop()
        if ok and not os.environ.get("KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("logs in %s" % tmp)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
