#!/usr/bin/python3
"""dashboard_cdp.py BASE_URL RUNS_JSON OUT_PREFIX [--history]

Drives loomd's dashboard in headless Chromium through the DevTools
protocol (python3-websocket) and checks every page against the runs the
calling test made (RUNS_JSON: {"fan": id, "plain": id, "failed": id,
"running": id, "total": n}). Screenshots go to OUT_PREFIX_<page>.png.
--history: the loomd has PostgreSQL (the history page shows tables);
otherwise that page must say it needs --db. With $LOOM_AUTH_TOKEN set,
loomd wants it: the page must show nothing until it is typed in. Exits non-zero with what
differed. Used by tests/integration/test_dashboard.sh (in-memory store)
and tests/pg/test_dashboard_loomd.sh (PostgreSQL)."""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket

BASE, RUNS, OUT = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3]
HISTORY = "--history" in sys.argv
TOKEN = os.environ.get("LOOM_AUTH_TOKEN", "")  # loomd wants this bearer token
WIDTH = 1400


class Browser:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="loom-chromium.")
        self.proc = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--user-data-dir=" + self.dir, "--remote-debugging-port=0",
             "--remote-allow-origins=*",  # DevTools refuses other origins' WebSockets (403)
             "--window-size=%d,1000" % WIDTH, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.dir, "DevToolsActivePort")
        for _ in range(600):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        port = int(open(port_file).read().split()[0])
        targets = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json" % port, timeout=10))
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.n = 0
        self.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=1000,
                  deviceScaleFactor=1, mobile=False)

    def close(self):
        self.ws.close()
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def call(self, method, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == self.n:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m["result"]

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expr[:80], r["exceptionDetails"]))
        return r["result"].get("value")

    def wait(self, expr, what, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            v = self.js("(() => { try { return %s; } catch (e) { return false; } })()" % expr)
            if v:
                return v
            time.sleep(0.1)
        raise AssertionError("timed out waiting for %s; the page says: %s" % (
            what, self.js("document.body.innerText.slice(0, 1500)")))

    def open(self, hash_, page):
        """Shows a page and waits until it has rendered data."""
        self.js("document.body && (document.body.dataset.loaded = 'stale')")
        self.call("Page.navigate", url=BASE + "/" + hash_)
        self.wait("document.body.dataset.page === %s && document.body.dataset.loaded === 'yes'"
                  % json.dumps(page), "page %s (%s)" % (page, hash_))

    def shot(self, name):
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        with open("%s_%s.png" % (OUT, name), "wb") as f:
            f.write(base64.b64decode(data))

    def no_sideways_scroll(self, where):
        w = self.js("document.documentElement.scrollWidth")
        check(w <= WIDTH, "%s scrolls sideways at %d px (%d px wide)" % (where, WIDTH, w))


FAILED = []


def check(ok, what):
    if not ok:
        FAILED.append(what)
        print("FAIL:", what, file=sys.stderr)


ROWS = "[...document.querySelectorAll('#runs tbody tr[data-run]')].map(t => t.dataset.run)"


def sign_in(b):
    """loomd wants a token: the page loads (code only), shows no runs and
    asks; with the token typed in, the API answers."""
    b.call("Page.navigate", url=BASE + "/#/runs")
    b.wait("!document.querySelector('#token-form').hidden", "the token form")
    check(b.js("document.querySelectorAll('#runs tbody tr[data-run]').length") == 0, "runs shown without a token")
    b.js("document.querySelector('#token-input').value = %s; document.body.dataset.loaded = 'stale';"
         "document.querySelector('#token-form').requestSubmit()" % json.dumps(TOKEN))
    b.wait("document.body.dataset.loaded === 'yes' && document.querySelector('#token-form').hidden", "signed in")


def runs_page(b):
    if TOKEN:
        sign_in(b)
    b.open("#/runs", "runs")
    b.wait("%s.length === %d" % (ROWS, RUNS["total"]), "%d runs listed" % RUNS["total"])
    b.no_sideways_scroll("the runs list")
    row = lambda rid, col: b.js(
        "document.querySelector('#runs tr[data-run=\"%s\"]').children[%d].textContent" % (rid, col))
    check(b.js("document.querySelector('#runs tr[data-run=\"%s\"]').dataset.state" % RUNS["fan"]) == "succeeded",
          "fan run state")
    check(row(RUNS["fan"], 5) == "met", "fan run SLA: %r" % row(RUNS["fan"], 5))
    check(row(RUNS["failed"], 5) == "missed", "failed run with an SLA: %r" % row(RUNS["failed"], 5))
    check(row(RUNS["running"], 5) == "", "a run with no SLA shows none: %r" % row(RUNS["running"], 5))
    cost = row(RUNS["fan"], 6)
    check(cost.startswith("$") and cost not in ("$0.0000", "$0") and "e" not in cost,
          "fan run cost shown with sensible precision: %r" % cost)
    check("team=ops" in row(RUNS["fan"], 8), "labels shown: %r" % row(RUNS["fan"], 8))
    b.shot("runs")
    # filters as deep links
    b.open("#/runs?label=team%3Dops", "runs")
    got = sorted(b.js(ROWS))
    check(got == sorted([RUNS["fan"], RUNS["failed"]]), "label filter: %s" % got)
    b.open("#/runs?state=failed", "runs")
    check(b.js(ROWS) == [RUNS["failed"]], "state filter: %s" % b.js(ROWS))
    check(b.js("document.querySelector('#filters select[name=state]').value") == "failed",
          "the state filter's form shows the deep link's value")
    b.open("#/runs?workflow=cancel-me", "runs")
    check(b.js(ROWS) == [RUNS["running"]], "workflow filter: %s" % b.js(ROWS))
    b.open("#/runs?tenant=default&since=2000-01-01T00:00", "runs")
    check(len(b.js(ROWS)) == RUNS["total"], "tenant + since filter: %s" % b.js(ROWS))
    b.open("#/runs?until=2000-01-01T00:00", "runs")
    check(b.js(ROWS) == [], "until filter: %s" % b.js(ROWS))
    # paging
    b.open("#/runs?limit=2", "runs")
    first = b.js(ROWS)
    check(len(first) == 2 and b.js("!!document.querySelector('#next-page')"), "page 1 of 2 runs with a next link")
    b.js("document.body.dataset.loaded = 'stale'; document.querySelector('#next-page').click()")
    b.wait("document.body.dataset.loaded === 'yes'", "page 2")
    second = b.js(ROWS)
    check(len(second) == 2 and not set(first) & set(second), "page 2: %s after %s" % (second, first))


def run_page(b):
    b.open("#/runs/" + RUNS["fan"], "run")
    b.no_sideways_scroll("the run page")
    steps = b.js("Object.fromEntries([...document.querySelectorAll('#steps tr[data-step]')].map("
                 "t => [t.dataset.step, [t.dataset.state, t.children[5].textContent]]))")
    items = ["fan[%d]" % i for i in range(6)]
    check(all(steps.get(i, ["", ""])[0] == "succeeded" and steps[i][1] for i in items),
          "every fan-out item is a row with its worker: %s" % steps)
    check(steps.get("maybe", [""])[0] == "skipped", "the skipped step is listed: %s" % steps.get("maybe"))
    bars = b.js("[...document.querySelectorAll('#gantt rect.bar')].map(r => r.dataset.step + '@' + r.dataset.worker)")
    check(all(any(x.startswith(i + "@w") for x in bars) for i in items), "Gantt bars per item with worker: %s" % bars)
    check(b.js("document.querySelector('#run-sla').textContent").endswith("met"), "SLA shown as met")
    check("HELLO" in b.js("document.querySelector('#run-outputs').textContent"), "run outputs shown")
    check("who" in b.js("document.querySelector('#run-inputs').textContent"), "run inputs shown")
    b.wait("document.querySelectorAll('#events tbody tr[data-kind]').length >= 5", "the run's events")
    kinds = b.js("[...document.querySelectorAll('#events tbody tr')].map(t => t.dataset.kind)")
    check("run_finished" in kinds and "step_skipped" in kinds, "events: %s" % kinds)
    b.wait("(document.querySelector('#run-module') || {}).textContent !== undefined && "
           "document.querySelector('#run-module').textContent.includes('func.func @')", "the run's partitioned module")
    check(b.js("document.querySelector('#cancel').disabled") and not b.js("document.querySelector('#retry').disabled"),
          "a finished run: cancel off, retry on")
    # an item's output behind its toggle
    b.js("document.querySelector('#steps tr[data-step=\"fan[2]\"] button.toggle').click()")
    check('"got": "c"' in b.js("document.querySelector('#steps tr[data-step=\"fan[2]\"]').nextSibling.textContent"),
          "fan[2]'s output")
    b.js("document.querySelector('#gantt-view').click()")
    workers = b.js("[...document.querySelectorAll('#gantt g.row')].map(g => g.dataset.key)")
    check(workers and all(w.startswith("w") for w in workers), "Gantt grouped by worker: %s" % workers)
    overlaps = b.js("[...document.querySelectorAll('#gantt g.row')].filter(g => { const r = [...g.querySelectorAll('rect.bar')]"
                    ".map(e => [+e.getAttribute('x'), +e.getAttribute('x') + +e.getAttribute('width')]).sort((p, q) => p[0] - q[0]);"
                    " return r.some((p, i) => i && p[0] < r[i - 1][1] - 0.5); }).length")
    check(overlaps == 0, "tasks running at once on a worker get lanes of their own (%d rows overlap)" % overlaps)
    b.shot("run")

    b.open("#/runs/" + RUNS["failed"], "run")
    check("boom" in (b.js("document.querySelector('#run-error') && document.querySelector('#run-error').textContent") or ""),
          "the failed run's error")
    check(b.js("document.querySelector('#steps tr[data-step=\"explode\"]').dataset.state") == "failed", "failed step row")
    check(b.js("document.querySelector('#run-sla').textContent").endswith("missed"), "failed run: SLA missed")
    b.shot("run_failed")

    # cancel a running run with the button
    b.open("#/runs/" + RUNS["running"], "run")
    check(b.js("!document.querySelector('#run-sla')"), "a run with no SLA shows no SLA line")
    b.wait("!document.querySelector('#cancel').disabled", "the cancel button")
    b.js("document.querySelector('#cancel').click()")
    b.wait("document.querySelector('#run-state').textContent === 'cancelled'", "the run cancelled")
    b.shot("run_cancelled")

    # retry the failed run: a new run with the same workflow and retry_of
    b.open("#/runs/" + RUNS["failed"], "run")
    b.js("document.body.dataset.loaded = 'stale'; document.querySelector('#retry').click()")
    b.wait("document.body.dataset.loaded === 'yes' && document.querySelector('#run-id') && "
           "document.querySelector('#run-id').textContent !== %s" % json.dumps(RUNS["failed"]), "the retried run")
    check("retry_of=" + RUNS["failed"] in b.js("document.querySelector('#run-head').textContent"),
          "the new run is labelled retry_of")
    check("team=ops" in b.js("document.querySelector('#run-head').textContent"), "the new run keeps the labels")


def fleet_page(b):
    b.open("#/fleet", "fleet")
    b.no_sideways_scroll("the fleet page")
    rows = b.js("[...document.querySelectorAll('#workers tbody tr[data-worker]')].map(t => [t.dataset.worker, t.dataset.state])")
    check(sorted(rows) == [["w1", "ready"], ["w2", "ready"]], "fleet rows: %s" % rows)
    check(b.js("document.querySelector('#fleet-slots').textContent") == "3", "slots: 2 + 1")
    # once nothing runs, idle workers are 0% busy (queued tasks do not count)
    b.wait("document.querySelector('#fleet-busy').textContent === '0'", "no busy slots")
    check(b.js("document.querySelector('#fleet-util').textContent") == "0%", "utilisation of idle workers")
    b.wait("document.querySelectorAll('#workers svg.spark polyline').length >= 4", "per-worker series")
    check("$2.5" in b.js("document.querySelector('#workers tr[data-worker=w1]').textContent"), "price per hour")
    b.shot("fleet")


def history_page(b):
    b.open("#/history", "history")
    if HISTORY:
        b.wait("document.querySelectorAll('#sla tbody tr').length >= 1", "SLA history rows")
        sla = b.js("[...document.querySelectorAll('#sla tbody tr')].map(t => t.textContent)")
        check(any(r.startswith("stitch") for r in sla), "stitch in the SLA history: %s" % sla)
    else:
        check(b.js("!!document.querySelector('#no-history')"), "in-memory store: history says it needs --db")
    b.shot("history")


b = Browser()
try:
    for page in (runs_page, run_page, fleet_page, history_page):
        try:
            page(b)
        except Exception as e:  # one page's failure should not hide the others'
            check(False, "%s: %s" % (page.__name__, e))
finally:
    b.close()
if FAILED:
    sys.exit("%d dashboard check(s) failed" % len(FAILED))
print("dashboard ok: runs, run, fleet and history pages")
