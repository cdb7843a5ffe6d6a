#!/usr/bin/python3
"""bench/prefix_placement.py — part of `make bench-kv-prefix`: multi-turn
conversations on real loomd and two real CPU workers, with prefix-aware
placement (loomd's default: a turn goes where its conversation's KV prefix
lives when the planner prices that cheaper, docs/PLANNER.md) against
prefix-unaware placement (loomd --prefix-placement off: the plan and the
load alone decide), alternating sides, each side on a fresh loomd and fresh
workers (empty prefix caches).

C conversations run at once (each one turn at a time: a run whose
llm.generate gets the system prompt, every earlier turn and its answer, and
a new user message); the workers have one slot and one engine thread each
and different prices (the plan prefers wa, load spills to wb), so with
more conversations than workers an unaware placement scatters a
conversation's turns over both.
Prints per side the median (range) end-to-end time of all conversations,
the prompt tokens prefilled and reused (the workers' own counts), how many
turns ran where their prefix lived, and whether both sides gave the same
answers (greedy: they must).

Usage: prefix_placement.py MODEL [ROUNDS] [CONVERSATIONS] [TURNS]
       (default 2 rounds, 3 conversations, 5 turns)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BUILD = os.environ.get("BUILD", "build")
BIN = os.path.abspath(os.path.join(BUILD, "bin"))
SYSTEM = ("You are the planning assistant of a fleet of mixed devices. Keep answers short. "
          "Cite the device and the step. ") * 6
QUESTIONS = ["Where should the retrieval step run?", "And the reranker?", "What about the summary?",
             "Can the decode move to the CPU?", "What does the SLA allow?", "Which step is the bottleneck?",
             "What would a second GPU change?", "And if the link were slower?", "Summarise the plan.",
             "What is left to decide?"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(pred, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


class Fleet:
    """loomd (with extra flags) and two CPU workers, fresh."""

    def __init__(self, tmp, loomd_flags):
        self.tmp = tmp
        self.procs = []
        cp, wp = free_port(), free_port()
        self.env = dict(os.environ, LOOM_ENDPOINT="tcp://127.0.0.1:%d" % cp, LOOM_LOG_LEVEL="info",
                        LOOM_LLM_THREADS="1", LOOM_OBJECT_DIR=os.path.join(tmp, "objects"))
        ready = os.path.join(tmp, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        self.start("loomd", [BIN + "/loomd", "--client", "tcp://127.0.0.1:%d" % cp, "--workers",
                             "tcp://127.0.0.1:%d" % wp, "--ready-file", ready] + loomd_flags)
        if not wait_for(lambda: os.path.exists(ready)):
            raise SystemExit("bench-kv-prefix: loomd did not start")
        for w, price in (("wa", "1.0"), ("wb", "1.5")):  # the plan prefers wa; load spills to wb
            self.start(w, [BIN + "/loom-worker-cpu", "--endpoint", "tcp://127.0.0.1:%d" % wp, "--id", w,
                           "--slots", "1", "--ops", "llm.generate", "--price", price])
        if not wait_for(lambda: self.workers() == 2):
            raise SystemExit("bench-kv-prefix: workers did not register")

    def start(self, name, argv):
        log = open(os.path.join(self.tmp, name + ".log"), "w")
        self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env))

    def workers(self):
        r = subprocess.run([BIN + "/loom", "workers", "--json"], capture_output=True, text=True, env=self.env)
        try:
            return sum(1 for w in json.loads(r.stdout) if w.get("state") in ("ready", "READY", "idle", "busy")
                       or "id" in w)
        except ValueError:
            return 0

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGKILL)
        for p in self.procs:
            p.wait()

    def tokens(self):
        """(prompt tokens, reused tokens) over both workers' generations."""
        prompt = reused = 0
        for w in ("wa", "wb"):
            for line in open(os.path.join(self.tmp, w + ".log")):
                m = re.search(r'msg="generated" .*prompt_tokens=(\d+) reused_tokens=(\d+)', line)
                if m:
                    prompt += int(m.group(1))
                    reused += int(m.group(2))
        return prompt, reused


def yaml_str(s):
    return json.dumps(s)  # a JSON string is a YAML flow scalar


def conversation(fleet, model, c, turns, answers, where, errors):
    # a system prompt all conversations share, then this conversation's own
    # retrieved context (what an unaware placement loses when it moves a turn)
    context = " ".join("Document %d-%d: device %s ran step %d in %d ms." % (c, i, "abcdefgh"[(c + i) % 8], i, 40 + 7 * i)
                       for i in range(8))
    msgs = [{"role": "system", "content": SYSTEM + " Retrieved context: " + context}]
    for t in range(turns):
        msgs.append({"role": "user", "content": QUESTIONS[(t + c) % len(QUESTIONS)]})
        path = os.path.join(fleet.tmp, "c%d-t%d.yaml" % (c, t))
        with open(path, "w") as f:
            f.write("version: 1\nname: conv%d-turn%d\nsla: {latency_ms: 600000}\nresources:\n  models:\n"
                    "    m: {path: %s, arch: llama, layers: 22, hidden: 256, heads: 4, kv_heads: 4, vocab: 32000,"
                    " context: 8192, dtype: f16}\nsteps:\n  turn:\n    op: llm.generate\n    model: m\n"
                    "    max_tokens: 32\n    messages:\n" % (c, t, yaml_str(model)))
            for m in msgs:
                f.write("      - {role: %s, content: %s}\n" % (m["role"], yaml_str(m["content"])))
            f.write("outputs:\n  answer: ${steps.turn.output}\n")
        r = subprocess.run([BIN + "/loom", "run", path, "--json"], capture_output=True, text=True, env=fleet.env)
        try:
            d = json.loads(r.stdout)
            assert d["state"] == "succeeded", d.get("error")
        except (ValueError, AssertionError, KeyError) as e:
            errors.append("conversation %d turn %d: %s %s" % (c, t, e, r.stderr[-500:]))
            return
        answer = d["outputs"]["answer"]
        answers[(c, t)] = answer
        step = d["steps"][0]
        where.append((c, t, step.get("worker", ""), step.get("reason", "")))
        msgs.append({"role": "assistant", "content": answer})


def side(model, aware, convs, turns):
    tmp = tempfile.mkdtemp(prefix="loom-bench-prefix.")
    fleet = Fleet(tmp, [] if aware else ["--prefix-placement", "off"])
    answers, where, errors = {}, [], []
    try:
        t0 = time.time()
        th = [threading.Thread(target=conversation, args=(fleet, model, c, turns, answers, where, errors))
              for c in range(convs)]
        for x in th:
            x.start()
        for x in th:
            x.join()
        dt = time.time() - t0
        time.sleep(0.3)  # the last "generated" log lines
        prompt, reused = fleet.tokens()
    finally:
        fleet.stop()
    if errors:
        print("  kept:", tmp)
        raise SystemExit("bench-kv-prefix: " + "; ".join(errors))
    shutil.rmtree(tmp, ignore_errors=True)
    there = sum(1 for w in where if "chose: run where the prefix lives" in w[3])
    recomputed = sum(1 for w in where if "prefix:" in w[3] and "chose: recompute" in w[3])
    return dt, prompt, reused, there, recomputed, answers


def main():
    if len(sys.argv) < 2 or sys.argv[1] == "--help":
        print(__doc__)
        return 0 if len(sys.argv) > 1 else 2
    model = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    convs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    turns = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    print("bench-kv-prefix (placement): loomd + 2 CPU workers (1 slot, 1 engine thread each, $1.0/h and $1.5/h), %d conversations "
          "at once, %d turns each (32-token greedy answers, a shared system prompt and per-conversation context), %s; %d rounds alternating" % (convs, turns,
                                                                                 os.path.basename(model), rounds))
    res = {True: [], False: []}
    ans = {}
    for r in range(rounds):
        for aware in ((True, False) if r % 2 == 0 else (False, True)):
            out = side(model, aware, convs, turns)
            res[aware].append(out)
            ans.setdefault(aware, out[5])
            print("  round %d, %s: %.2f s, %d prompt tokens, %d reused, %d turns where the prefix lived, "
                  "%d recomputed elsewhere by choice" % (r + 1, "prefix-aware  " if aware else "prefix-unaware",
                                                         out[0], out[1], out[2], out[3], out[4]))
    same = ans[True] == ans[False]
    for aware in (True, False):
        ts = sorted(x[0] for x in res[aware])
        pre = [x[1] - x[2] for x in res[aware]]
        print("  %s: %.2f s (%.2f-%.2f), %d tokens prefilled of %d (median)" % (
            "prefix-aware  " if aware else "prefix-unaware", ts[len(ts) // 2], ts[0], ts[-1],
            sorted(pre)[len(pre) // 2], sorted(x[1] for x in res[aware])[len(pre) // 2]))
    ta = sorted(x[0] for x in res[True])[rounds // 2]
    tu = sorted(x[0] for x in res[False])[rounds // 2]
    pa = sorted(x[1] - x[2] for x in res[True])[rounds // 2]
    pu = sorted(x[1] - x[2] for x in res[False])[rounds // 2]
    print("  speed-up %.2fx, tokens prefilled %.1f%% of unaware; same answers: %s" % (
        tu / ta, 100.0 * pa / pu if pu else 0, "yes" if same else "NO"))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
