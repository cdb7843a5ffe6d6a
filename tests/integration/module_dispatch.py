#!/usr/bin/env python3
"""Checks that a run executed exactly what its partitioned module says
(tests/integration/test_module_dispatch.sh).

Usage: module_dispatch.py RUN.json MODULE.mlir

RUN.json is `loom status RUN --json` (each step record with the worker its
task was sent to and the placement's reason, which names the send/recv
pair each input from another device came over); MODULE.mlir is the run's
module as loomd stored it (`loom status RUN --mlir`) or as given to
`loom run --plan`. Checked:
  tasks:     every task ran on the device (worker id) of its op's device
             function, and every op of the module ran (unless its step was
             skipped: a `when` that was false);
  transfers: the send/recv pairs the tasks received their inputs over are
             exactly the module's pairs between two tasks (a loop's own input
             and output are assembled by loomd, not sent between tasks), and
             no input came from another device outside the module.
Prints a one-line summary; exits 1 with the differences otherwise."""
import json
import re
import sys

TASK_OPS = ("loom.llm.generate", "loom.llm.prefill", "loom.llm.decode", "loom.embed",
            "loom.vector.search", "loom.tool", "loom.compute")
DEF = re.compile(r'^\s*(?:(%[\w#:]+) = )?"(loom\.[\w.]+|gpu\.yield)"\((.*?)\)')
FUNC = re.compile(r'func\.func @"[^"]*@([^"]+)"')
ATTR = re.compile(r'(\w+) = "((?:[^"\\]|\\.)*)"')


def attrs(line):
    return dict(ATTR.findall(line.split(") {", 1)[1] if ") {" in line else line))


def parse(text):
    """ops: one dict per loom op: dev, name, ssa, operands, attrs, fn (function index)."""
    ops, stack, dev, fn = [], [], None, -1
    for line in text.splitlines():
        m = FUNC.search(line)
        if m:
            dev, fn = m.group(1), fn + 1
            continue
        s = line.strip()
        if s.startswith("})"):  # the end of a region op: its attributes
            stack.pop()["attrs"] = attrs("x) " + s[2:])
            continue
        m = DEF.match(line)
        if not m or m.group(2) == "gpu.yield":
            continue
        op = {"dev": dev, "fn": fn, "ssa": m.group(1), "name": m.group(2),
              "operands": re.findall(r"%[\w#]+", m.group(3)), "attrs": attrs(line)}
        ops.append(op)
        if s.endswith("({"):
            stack.append(op)
    return ops


def nodes_of(op):
    return [op["attrs"][k] for k in ("node", "prefill", "decode") if k in op["attrs"]]


def node_of_record(step, module_nodes):
    """The module node a step record ran: "react/think#1" -> react.think(.decode)."""
    base = re.sub(r"(#\d+|\[\d+\])$", "", step).replace("/", ".")
    for cand in (base, base + ".decode", base + ".prefill"):
        if cand in module_nodes:
            return cand
    return None


def step_of_node(node):
    return re.sub(r"\.(prefill|decode)$", "", node)


def main():
    run = json.load(open(sys.argv[1]))
    ops = parse(open(sys.argv[2]).read())
    errors = []
    assert run["state"] == "succeeded", run.get("error")
    placed = {}  # node -> device
    for op in ops:
        if op["name"] in TASK_OPS:
            for n in nodes_of(op):
                placed[n] = op["dev"]
    # tasks
    ran, skipped = set(), set()
    records = [r for r in run["steps"] if r.get("worker")]
    for r in run["steps"]:
        if r["state"] == "skipped":
            skipped.add(re.sub(r"(#\d+|\[\d+\])$", "", r["step"]).replace("/", "."))
    for r in records:
        n = node_of_record(r["step"], placed)
        if n is None:
            errors.append("task %s ran on %s: no op of the module runs it" % (r["step"], r["worker"]))
            continue
        ran.add(step_of_node(n))
        if placed[n] != r["worker"]:
            errors.append("task %s ran on %s, the module puts it on %s" % (r["step"], r["worker"], placed[n]))
    for n, dev in sorted(placed.items()):
        st = step_of_node(n)
        if st not in ran and st not in skipped:
            errors.append("op %s (on %s) of the module never ran" % (n, dev))
    # transfers: the module's pairs between two tasks whose steps ran
    by_ssa = {(op["fn"], op["ssa"]): op for op in ops if op["ssa"]}
    sends = {op["attrs"]["channel"]: op for op in ops if op["name"] == "loom.send"}
    want = set()
    for rv in (op for op in ops if op["name"] == "loom.recv"):
        send = sends[rv["attrs"]["channel"]]
        prod = by_ssa.get((send["fn"], send["operands"][0]))
        if not prod or prod["name"] == "loom.loop":  # a loop's input or output: loomd's
            continue
        for user in ops:
            if user["fn"] != rv["fn"] or rv["ssa"] not in user["operands"] or user["name"] not in TASK_OPS:
                continue
            if step_of_node(nodes_of(prod)[-1]) in ran and step_of_node(nodes_of(user)[-1]) in ran:
                want.add(rv["attrs"]["channel"])
    got = set()
    for r in records:
        reason = r.get("reason", "")
        if "outside the module" in reason:
            errors.append("task %s: %s" % (r["step"], reason))
        for prod, chan, frm in re.findall(r"receives (\S+) over (\S+) from ([^;\s]+)", reason):
            if chan not in sends:
                errors.append("task %s received %s over %s, which the module does not have" % (r["step"], prod, chan))
                continue
            s = sends[chan]
            if s["dev"] != frm or s["attrs"].get("to") != r["worker"]:
                errors.append("task %s received over %s from %s to %s; the module's pair is %s -> %s" %
                              (r["step"], chan, frm, r["worker"], s["dev"], s["attrs"].get("to")))
            got.add(chan)
    for c in sorted(want - got):
        errors.append("the module's pair %s carried nothing" % c)
    for c in sorted(got - want):
        errors.append("a task received over %s, not a pair between two tasks of the module" % c)
    if errors:
        print("\n".join(errors))
        sys.exit(1)
    print("%s: %d tasks on %d devices as the module places them; %d send/recv pairs, as executed" %
          (run.get("workflow", "?"), len(records), len({r["worker"] for r in records}), len(want)))


if __name__ == "__main__":
    main()
