"""Drives a real loomd through the installed loom_client package only (run
by test_python_sdk.sh inside a venv where `pip install clients/python` put
it). Argument: the directory of the test workflows and a scratch dir."""
import asyncio
import os
import sys
import time

import loom_client
from loom_client import AsyncClient, Client

WF, TMP = sys.argv[1], sys.argv[2]


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)


def wait_file(path, seconds=30):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return True
        time.sleep(0.05)
    return False


def sync_checks():
    c = Client()  # $LOOM_ENDPOINT, $LOOM_AUTH_TOKEN
    h = c.health()
    check(h.status == "SERVING" and h.workers == 1, "health")
    check([w.worker_id for w in c.workers()] == ["w1"], "workers")
    plan = c.plan(os.path.join(WF, "stitch.yaml"), {"who": "sdk"})
    check(len(plan.placements) > 0, "plan")

    # run: submit + watch to the end + get
    events = []
    run = c.run(os.path.join(WF, "stitch.yaml"), {"who": "sdk"}, on_event=events.append,
                labels={"team": "ops"}, idempotency_key="sdk-run-1")
    check(run.state == loom_client.RUN_SUCCEEDED, "run succeeded")
    check('"n is 3"' in run.outputs_json, "run outputs")
    kinds = [e.kind for e in events]
    check(kinds[0] == loom_client.RUN_EVENT_QUEUED and kinds[-1] == loom_client.RUN_EVENT_RUN_FINISHED,
          "typed events from QUEUED to RUN_FINISHED")
    check([e.seq for e in events] == list(range(1, len(events) + 1)), "events in order")
    check(len(run.steps) >= 5 and all(s.state for s in run.steps), "steps in Get")
    again = c.submit(os.path.join(WF, "stitch.yaml"), {"who": "sdk"}, idempotency_key="sdk-run-1")
    check(again.run_id == run.run_id, "idempotency key returns the first run")

    # watch with after_seq: only later events
    later = list(c.watch(run.run_id, after_seq=len(events) - 2))
    check([e.seq for e in later] == [len(events) - 1, len(events)], "watch resumes after_seq")
    outcome = list(c.watch(run.run_id, run_only=True))
    check(outcome and outcome[-1].kind == loom_client.RUN_EVENT_RUN_FINISHED
          and not [e for e in outcome if e.step_id] and len(outcome) < len(events),
          "watch run_only: the run's events without STEP_* ones")

    # list: pages of one, every run once
    page = c.list(limit=1)
    check(len(page.runs) == 1, "list limit")
    everything = [r.run_id for r in c.list(limit=100).runs]
    if page.next_page_token:
        ids = [r.run_id for r in c.iter_runs(page_size=1)]
        check(ids == everything, "iter_runs walks the pages")
    else:  # loomd's List has no page tokens yet (issue 11 adds them)
        print("note: List returned no next_page_token; paging not exercised")

    # typed errors
    try:
        c.get("r-does-not-exist")
        check(False, "NotFound raised")
    except loom_client.NotFound as e:
        check(e.code == 5 and e.status == "NOT_FOUND", "NotFound raised")
    try:
        c.submit("version: 1\nname: bad\nsteps:\n  a: {op: no.such.op}\n")
        check(False, "InvalidArgument raised")
    except loom_client.InvalidArgument as e:
        check("no.such.op" in str(e), "InvalidArgument names the op")
    bad = Client(token="wrong")
    try:
        bad.health()
        check(False, "Unauthenticated raised")
    except loom_client.Unauthenticated:
        check(True, "Unauthenticated raised")
    bad.close()

    # cancel a running run while watching it; a deadline on a watch
    rep = c.submit(os.path.join(WF, "cancel.yaml"), {"dir": TMP})
    check(wait_file(os.path.join(TMP, "long.pid")), "long step started")
    try:
        for _ in c.watch(rep.run_id, timeout=0.5):
            pass
        check(False, "watch deadline")
    except loom_client.DeadlineExceeded:
        check(True, "watch deadline -> DeadlineExceeded")
    w = c.watch(rep.run_id)
    check(c.cancel(rep.run_id, "from the sdk") == loom_client.RUN_CANCELLED, "cancel")
    last = list(w)[-1]
    check(last.kind == loom_client.RUN_EVENT_RUN_CANCELLED, "watch ends with RUN_CANCELLED")
    check(c.get(rep.run_id).state == loom_client.RUN_CANCELLED, "get says cancelled")
    # retry it: a new run of the same workflow, found by its retry_of label
    again = c.retry(rep.run_id)
    check(again.run_id != rep.run_id, "retry is a new run")
    check([r.run_id for r in c.list(labels={"retry_of": rep.run_id}).runs] == [again.run_id],
          "list by label finds the retry")
    check(c.cancel(again.run_id) == loom_client.RUN_CANCELLED, "cancel the retry")
    c.close()


async def async_checks():
    async with AsyncClient() as c:
        h, ws = await asyncio.gather(c.health(), c.workers())
        check(h.status == "SERVING" and ws[0].worker_id == "w1", "async health + workers at once")
        seen = []
        run = await c.run(os.path.join(WF, "stitch.yaml"), {"who": "async"}, on_event=seen.append)
        check(run.state == loom_client.RUN_SUCCEEDED and seen[-1].kind ==
              loom_client.RUN_EVENT_RUN_FINISHED, "async run")
        # two runs watched concurrently on one client
        a, b = await asyncio.gather(c.run(os.path.join(WF, "stitch.yaml"), {"who": "a"}),
                                    c.run(os.path.join(WF, "stitch.yaml"), {"who": "b"}))
        check(a.state == b.state == loom_client.RUN_SUCCEEDED and a.run_id != b.run_id,
              "async concurrent runs")
        os.remove(os.path.join(TMP, "long.pid"))
        rep = await c.submit(os.path.join(WF, "cancel.yaml"), {"dir": TMP})
        check(await asyncio.get_running_loop().run_in_executor(
            None, wait_file, os.path.join(TMP, "long.pid")), "async long step started")
        w = await c.watch(rep.run_id)
        check(await c.cancel(rep.run_id) == loom_client.RUN_CANCELLED, "async cancel")
        kinds = [e.kind async for e in w]
        check(kinds[-1] == loom_client.RUN_EVENT_RUN_CANCELLED, "async watch ends cancelled")
        try:
            await c.get("r-nope")
            check(False, "async NotFound")
        except loom_client.NotFound:
            check(True, "async NotFound")
        runs = [r async for r in c.iter_runs(page_size=100)]
        check(len(runs) >= 5 and runs[0].run_id == rep.run_id, "async iter_runs, newest first")


sync_checks()
asyncio.run(async_checks())
print("python sdk: all checks passed")
