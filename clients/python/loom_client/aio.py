"""The asyncio client: the same API as loom_client.Client with coroutines
and async iterators. One reader task files answers by request id, so any
number of calls and watches may run concurrently on one AsyncClient."""
import asyncio
import time

import zmq
import zmq.asyncio

from loom_client import _wire as w
from loom_client._pb.loom.v1 import rpc_pb2 as rpc
from loom_client.errors import LoomError, Unavailable


class AsyncWatch:
    """Async iterator over a run's RunEvents; see loom_client.Watch."""

    def __init__(self, client, request_id, queue, deadline):
        self._c = client
        self._id = request_id
        self._q = queue
        self._deadline = deadline
        self.done = False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.done:
            raise StopAsyncIteration
        left = None if self._deadline is None else self._deadline - time.monotonic()
        try:
            got = await asyncio.wait_for(self._q.get(), left) if left is None or left > 0 \
                else None
        except asyncio.TimeoutError:
            got = None
        if got is None:
            await self._c._send(w.cancel_frames("Watch", self._id))
            self._close()
            raise w.deadline_error("Watch")
        try:
            kind, msg = w.outcome(got[0], got[1], rpc.RunEvent)
        except LoomError:
            self._close()
            raise
        if kind == "item":
            return msg
        self._close()
        raise StopAsyncIteration

    async def cancel(self):
        if not self.done:
            await self._c._send(w.cancel_frames("Watch", self._id))
            self._close()

    def _close(self):
        self.done = True
        self._c._queues.pop(self._id, None)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.cancel()


class AsyncClient:
    """See loom_client.Client for the arguments. Use `async with
    AsyncClient(...) as c:` or call close(). With several endpoints it
    follows the leader a standby names; a loomd that dies mid-call is seen
    only at the call's deadline (the sync Client also watches the
    connection)."""

    def __init__(self, endpoint=None, token=None, timeout=30.0, server_public_key=None):
        self.endpoint, self.token = w.settings(endpoint, token)
        self.timeout = timeout
        self._ctx = zmq.asyncio.Context.instance()
        self._eps = w.endpoints(self.endpoint)
        self._cur = 0
        self._sock = w.make_socket(self._ctx, self._eps[0], server_public_key)
        self._next_id = 1
        self._queues = {}
        self._reader = None

    async def close(self):
        if self._reader:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
            self._reader = None
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None
        for q in self._queues.values():  # wake anyone still waiting
            q.put_nowait(None)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def _read_loop(self):
        while True:
            got = w.parse(await self._sock.recv_multipart())
            if got:
                q = self._queues.get(got[0].request_id)
                if q is not None:
                    q.put_nowait(got)

    async def _send(self, frames):
        await self._sock.send_multipart(frames)

    async def _start(self, method, request, timeout):
        if self._sock is None:
            raise Unavailable("client closed")
        if self._reader is None:
            self._reader = asyncio.ensure_future(self._read_loop())
        rid = self._next_id
        self._next_id += 1
        q = asyncio.Queue()
        self._queues[rid] = q
        await self._send(w.request_frames(method, rid, request, self.token, timeout))
        return rid, q

    async def call(self, method, request, timeout=None):
        t = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + t if t else None
        pause = 0.05
        while True:
            left = None if deadline is None else max(0.001, deadline - time.monotonic())
            rid, q = await self._start(method, request, left)
            try:
                got = await asyncio.wait_for(q.get(), left)
            except asyncio.TimeoutError:
                await self._send(w.cancel_frames(method, rid))
                raise w.deadline_error(method) from None
            finally:
                self._queues.pop(rid, None)
            if got is None:
                raise Unavailable("client closed")
            standby = w.standby_detail(got[0])
            if not standby or (deadline is not None and time.monotonic() >= deadline):
                return w.outcome(got[0], got[1], w.METHODS[method][1])[1]
            old = self._eps[self._cur]  # a standby: to the leader it names
            self._cur = w.next_endpoint(self._eps, self._cur, standby)
            if self._eps[self._cur] != old:
                self._sock.disconnect(old)
                self._sock.connect(self._eps[self._cur])
            await asyncio.sleep(pause)
            pause = min(0.5, pause * 2)

    async def health(self, timeout=None):
        return await self.call("Health", rpc.HealthRequest(), timeout)

    async def submit(self, workflow, inputs=None, *, name=None, idempotency_key=None,
                     labels=None, sla_latency_ms=0, objective=None, timeout=None):
        rq = w.submit_request(workflow, inputs, name, idempotency_key, labels, sla_latency_ms,
                              objective)
        return await self.call("Submit", rq, timeout)

    async def watch(self, run_id, *, after_seq=0, include_progress=False, run_only=False,
                    timeout=None):
        rq = rpc.WatchRequest(run_id=run_id, after_seq=after_seq,
                              include_progress=include_progress, run_only=run_only)
        rid, q = await self._start("Watch", rq, timeout)
        return AsyncWatch(self, rid, q, None if not timeout else time.monotonic() + timeout)

    async def run(self, workflow, inputs=None, *, on_event=None, include_progress=False,
                  timeout=None, **submit_args):
        start = time.monotonic()
        rep = await self.submit(workflow, inputs, **submit_args)
        left = None if not timeout else max(0.001, timeout - (time.monotonic() - start))
        async with await self.watch(rep.run_id, include_progress=include_progress,
                                    run_only=on_event is None, timeout=left) as events:
            async for ev in events:
                if on_event:
                    on_event(ev)
        return await self.get(rep.run_id)

    async def get(self, run_id, timeout=None):
        return (await self.call("Get", rpc.GetRequest(run_id=run_id), timeout)).run

    async def list(self, *, state=None, workflow_name=None, limit=0, page_token="",
                   tenant=None, labels=None, submitted_after_ms=0, submitted_before_ms=0,
                   timeout=None):
        rq = w.list_request(state, workflow_name, limit, page_token, tenant, labels,
                            submitted_after_ms, submitted_before_ms)
        return await self.call("List", rq, timeout)

    async def iter_runs(self, *, page_size=100, timeout=None, **filters):
        token = ""
        while True:
            page = await self.list(limit=page_size, page_token=token, timeout=timeout, **filters)
            for r in page.runs:
                yield r
            token = page.next_page_token
            if not token:
                return

    async def cancel(self, run_id, reason="", timeout=None):
        rq = rpc.CancelRequest(run_id=run_id, reason=reason)
        return (await self.call("Cancel", rq, timeout)).state

    async def retry(self, run_id, *, idempotency_key=None, timeout=None):
        rq = rpc.RetryRequest(run_id=run_id, idempotency_key=idempotency_key or "")
        return await self.call("Retry", rq, timeout)

    async def plan(self, workflow, inputs=None, *, name=None, sla_latency_ms=0, objective=None,
                   fleet_yaml=None, timeout=None):
        rq = w.plan_request(workflow, inputs, name, sla_latency_ms, objective, fleet_yaml)
        return (await self.call("Plan", rq, timeout)).plan

    async def workers(self, *, kind=None, include_lost=False, timeout=None):
        rq = rpc.ListWorkersRequest(kind=kind or 0, include_lost=include_lost)
        return list((await self.call("ListWorkers", rq, timeout)).workers)
