#!/usr/bin/env python3
"""Writes the partitioned loom-dialect module of tests/integration/workflows/
plan_module.yaml for a given placement, as loomd lowers it: one function per
device, each op a task there (target = the device), a send/recv pair where
b's input (a's output) crosses devices.
Usage: plan_module.py A_DEV B_DEV C_DEV [--break]   (--break: the recv names
another channel than the send, so the module parses but does not verify)"""
import sys

a, b, c = sys.argv[1:4]
broken = "--break" in sys.argv[4:]
devs = []
for d in (a, b, c):
    if d not in devs:
        devs.append(d)
attrs = 'budget_ms = 0.000000e+00 : f64, kind = "noop", pred_cost = 0.000000e+00 : f64, pred_ms = 1.000000e-01 : f64'
out = ["module {"]
for d in devs:
    body, rets, n = [], [], 0
    def v():
        global n
        n += 1
        return "%%%d" % (n - 1)
    va = vb = None
    if a == d:
        va = v()
        body.append('%s = "loom.tool"(%%arg0) {%s, node = "a", step = "a", target = "%s"} : (!loom.text) -> !loom.text' % (va, attrs, d))
        if b != d:
            body.append('"loom.send"(%s) {channel = "plan-module:a/tool->%s", target = "%s", to = "%s"} : (!loom.text) -> ()' % (va, b, d, b))
    if c == d:
        vc = v()
        body.append('%s = "loom.tool"(%%arg0) {%s, node = "c", step = "c", target = "%s"} : (!loom.text) -> !loom.text' % (vc, attrs, d))
        rets.append(vc)
    if b == d:
        if a != d:
            va = v()
            chan = "plan-module:a/tool->" + ("elsewhere" if broken else d)
            body.append('%s = "loom.recv"() {channel = "%s", from = "%s", target = "%s"} : () -> !loom.text' % (va, chan, a, d))
        vb = v()
        body.append('%s = "loom.tool"(%s) {%s, node = "b", step = "b", target = "%s"} : (!loom.text) -> !loom.text' % (vb, va, attrs, d))
        rets.append(vb)
    res = "" if not rets else " -> " + (rets and ("!loom.text" if len(rets) == 1 else "(" + ", ".join(["!loom.text"] * len(rets)) + ")"))
    out.append('  func.func @"plan-module@%s"(%%arg0: !loom.text)%s attributes {loom.device = "%s", loom.sla_ms = 0.000000e+00 : f64, loom.workflow = "plan-module"} {' % (d, res, d))
    out += ["    " + l for l in body]
    out.append("    return" + ("" if not rets else " " + ", ".join(rets) + " : " + ", ".join(["!loom.text"] * len(rets))))
    out.append("  }")
out.append("}")
print("\n".join(out))
