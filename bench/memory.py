#!/usr/bin/python3
"""bench-memory: loomd's resident memory after runs of many steps.

Starts loomd (in-memory store, default --max-finished-bytes unless
MAX_FINISHED_BYTES is set) and two CPU workers on loopback, then runs RUNS
(default 20) runs one after another, each a foreach of STEPS (default
100,000) noop tasks, and prints loomd's RSS before the first run and after
each one: VmRSS, its anonymous part (RssAnon: heap, stacks, socket
buffers, the store's run arenas) and, of that, what the malloc heap holds
resident, next to the documented bound on RssAnon (orchestrator/README.md,
Store): RssAnon at start + the finished-runs byte budget (the store keeps
each run's records in its own mmap'd arena and counts exactly its mapped
bytes, so the kept runs take at most the budget, and none of it is heap)
+ 64 MiB for the heap's high-water mark (one 100k-step run's engine state
and the reply to a Get of it: ~57 MB of heap, resident in part after the
run because small long-lived allocations pin some of its pages).
The file-backed rest (RssFile) is pages of loomd's binary and shared
libraries, about 90 MiB once the MLIR lowering has run: shared with other
processes and reclaimable. It cannot exceed the size of loomd's file
mappings, so VmRSS is checked against RssAnon's bound + that size. Each
line also shows how many finished runs the store keeps (List). Exits 1
when any RssAnon or VmRSS after a run is above its bound; the last line
gives the range of RssAnon over the second half of the runs (levelled off
when it is narrow).

The RSS of a process on a shared, noisy machine also depends on how the
allocator returns memory; read the trend, not single figures."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(os.environ.get("BUILD", os.path.join(ROOT, "build")))
sys.path.insert(0, os.path.join(BUILD, "gen", "py"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from churn import Client, free_port  # noqa: E402
from loom.v1 import rpc_pb2 as rpc  # noqa: E402

RUNS = int(os.environ.get("RUNS", "20"))
STEPS = int(os.environ.get("STEPS", "100000"))
BUDGET = int(os.environ.get("MAX_FINISHED_BYTES", str(128 << 20)))
SLACK = 64 << 20

WORKFLOW = """version: 1
name: wide
inputs:
  items: list
steps:
  each:
    op: noop
    foreach: ${inputs.items}
outputs:
  n: ${steps.each.output}
"""


def rss(pid, field="VmRSS"):
    for line in open("/proc/%d/status" % pid):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def heap_resident(pid):
    """Resident bytes of malloc's main heap ([heap] in smaps)."""
    inside = False
    for line in open("/proc/%d/smaps" % pid):
        if not line.split(" ", 1)[0].endswith(":"):  # a mapping's first line
            inside = line.rstrip().endswith("[heap]")
        elif inside and line.startswith("Rss:"):
            return int(line.split()[1]) * 1024
    return 0


def file_mapped(pid):
    """Bytes of loomd's file-backed mappings (an upper bound of RssFile)."""
    total = 0
    for line in open("/proc/%d/maps" % pid):
        parts = line.split()
        if len(parts) >= 6 and parts[5].startswith("/"):
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            total += hi - lo
    return total


def kept(cli):
    r, _ = cli.call("List", rpc.ListRequest(limit=1000), rpc.ListReply, 60000)
    return len(r.runs) if r else -1


def main():
    tmp = tempfile.mkdtemp(prefix="loom-bench-mem.")
    cep = "tcp://127.0.0.1:%d" % free_port()
    wep = "tcp://127.0.0.1:%d" % free_port()
    ready = os.path.join(tmp, "ready")
    log = open(os.path.join(tmp, "loomd.log"), "wb")
    procs = [subprocess.Popen([os.path.join(BUILD, "bin", "loomd"), "--client", cep, "--workers", wep,
                               "--ready-file", ready, "--max-finished-bytes", str(BUDGET)],
                              stdout=log, stderr=subprocess.STDOUT)]
    try:
        while not os.path.exists(ready):
            time.sleep(0.05)
        for i in range(2):
            procs.append(subprocess.Popen([os.path.join(BUILD, "bin", "loom-worker-cpu"), "--endpoint",
                                           wep, "--id", "m%d" % i, "--slots", "2"],
                                          stdout=log, stderr=subprocess.STDOUT))
        cli = Client(cep)
        while True:
            r, _ = cli.call("ListWorkers", rpc.ListWorkersRequest(), rpc.ListWorkersReply)
            if r and len(r.workers) == 2:
                break
            time.sleep(0.1)
        pid = procs[0].pid
        base = rss(pid, "RssAnon")
        bound = base + BUDGET + SLACK
        items = json.dumps({"items": list(range(STEPS))})
        print("bench-memory: loomd RSS, %d runs of %d noop steps (foreach), in-memory store, "
              "--max-finished-bytes %d MiB; shared noisy 2-core VM" % (RUNS, STEPS, BUDGET >> 20))
        print("              RssAnon (heap)      VmRSS  runs kept")
        print("  before      %7.1f MiB (%5.1f) %7.1f MiB" %
              (base / 2**20, heap_resident(pid) / 2**20, rss(pid) / 2**20))
        anon, vm = [], []
        for n in range(RUNS):
            t0 = time.monotonic()
            r, err = cli.call("Submit", rpc.SubmitRequest(workflow_yaml=WORKFLOW, workflow_name="wide.yaml",
                                                          inputs_json=items), rpc.SubmitReply, 60000)
            if not r:
                raise SystemExit("submit failed: %s" % err)
            while True:
                g, _ = cli.call("Get", rpc.GetRequest(run_id=r.run_id), rpc.GetReply, 60000)
                if g and g.run.state in (rpc.RUN_SUCCEEDED, rpc.RUN_FAILED, rpc.RUN_CANCELLED):
                    break
                time.sleep(0.2)
            if g.run.state != rpc.RUN_SUCCEEDED:
                raise SystemExit("run failed: %s" % g.run.error.message)
            secs = time.monotonic() - t0
            anon.append(rss(pid, "RssAnon"))
            vm.append(rss(pid))
            print("  after run %2d %7.1f MiB (%5.1f) %7.1f MiB  %3d  (%.1f s, %.0f tasks/s)" %
                  (n + 1, anon[-1] / 2**20, heap_resident(pid) / 2**20, vm[-1] / 2**20, kept(cli),
                   secs, STEPS / secs))
        vm_bound = bound + file_mapped(pid)
        print("  bound       %7.1f MiB  (RssAnon before + %d MiB finished-runs budget + %d MiB of heap)" %
              (bound / 2**20, BUDGET >> 20, SLACK >> 20))
        print("  VmRSS bound %7.1f MiB  (RssAnon's bound + %.1f MiB of file mappings)" %
              (vm_bound / 2**20, (vm_bound - bound) / 2**20))
        half = anon[len(anon) // 2:]
        print("  runs %d-%d: RssAnon %.1f-%.1f MiB" %
              (RUNS - len(half) + 1, RUNS, min(half) / 2**20, max(half) / 2**20))
        ok = max(anon) <= bound and max(vm) <= vm_bound
        print("ok" if ok else "ABOVE BOUND")
        return 0 if ok else 1
    finally:
        for p in procs:
            p.kill()
            p.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
