"""The synchronous client. One ZeroMQ DEALER socket per Client; several
calls and streams may be open on it (answers are matched by request id).
Not thread-safe: use one Client per thread."""
import collections
import time

import zmq

from loom_client import _wire as w
from loom_client._pb.loom.v1 import rpc_pb2 as rpc
from loom_client.errors import DeadlineExceeded, LoomError, Unavailable


class Watch:
    """Iterator over a run's RunEvents (typed protobuf messages), ending when
    the run reaches a final state. cancel() ends it early; a deadline ends
    it with DeadlineExceeded."""

    def __init__(self, client, request_id, deadline):
        self._c = client
        self._id = request_id
        self._deadline = deadline
        self._conn = client._conn  # the connection it was opened on
        self.done = False

    def __iter__(self):
        return self

    def __next__(self):
        if self.done:
            raise StopIteration
        while True:
            q = self._c._queues.get(self._id)
            if q:
                e, payload = q.popleft()
                try:
                    kind, msg = w.outcome(e, payload, rpc.RunEvent)
                except LoomError:
                    self._close()
                    raise
                if kind == "item":
                    return msg
                self._close()
                raise StopIteration
            if self._c._lost or self._c._conn != self._conn:
                self._close()  # the run goes on: watch it again (after_seq)
                raise Unavailable("the connection to loomd was lost; watch the run again")
            left = None if self._deadline is None else self._deadline - time.monotonic()
            if left is not None and left <= 0:
                self._c._send(w.cancel_frames("Watch", self._id))
                self._close()
                raise w.deadline_error("Watch")
            self._c._pump(left)

    def cancel(self):
        """Stops the stream (loomd is told; later events are dropped)."""
        if not self.done:
            self._c._send(w.cancel_frames("Watch", self._id))
            self._close()

    def _close(self):
        self.done = True
        self._c._queues.pop(self._id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cancel()


class Client:
    """A connection to loomd's client endpoint.

    endpoint: "tcp://host:port" (default $LOOM_ENDPOINT or tcp://127.0.0.1:7400),
      or several loomd sharing one database, comma-separated: the client talks
      to one and follows the leader (a standby's UNAVAILABLE names it; a lost
      or refused connection moves to the next), sending a unary call again
      within its deadline; an open Watch then raises Unavailable (watch again);
    token: sent as the authorization metadata (default $LOOM_AUTH_TOKEN);
    timeout: default deadline of unary calls in seconds (None = none);
    server_public_key: loomd's Z85 CURVE public key to encrypt the connection.
    """

    def __init__(self, endpoint=None, token=None, timeout=30.0, server_public_key=None,
                 context=None):
        self.endpoint, self.token = w.settings(endpoint, token)
        self.timeout = timeout
        self._ctx = context or zmq.Context.instance()
        self._eps = w.endpoints(self.endpoint)
        self._cur = 0
        self._sock = w.make_socket(self._ctx, self._eps[0], server_public_key)
        # several endpoints: a monitor tells at once when the connection goes
        self._mon = w.monitor(self._sock) if len(self._eps) > 1 else None
        self._lost = False
        self._conn = 0  # bumped at each move to another loomd
        self._next_id = 1
        self._queues = {}  # request id -> deque of (Envelope, payload)

    def close(self):
        if self._mon is not None:
            self._sock.disable_monitor()
            self._mon.close(0)
            self._mon = None
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    @property
    def current_endpoint(self):
        """The loomd in use (after a failover, the one that answered)."""
        return self._eps[self._cur]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- plumbing --------------------------------------------------------

    def _send(self, frames):
        self._sock.send_multipart(frames)

    def _pump(self, timeout_s):
        """Reads at most one message within timeout_s (None = forever)."""
        ms = None if timeout_s is None else max(0, int(timeout_s * 1000))
        if self._mon is None:
            if not self._sock.poll(ms):
                return
        else:
            ready = dict(self._poller().poll(ms))
            if self._mon in ready and w.connection_lost(self._mon, self._eps[self._cur]):
                self._lost = True
            if self._sock not in ready:
                return
        got = w.parse(self._sock.recv_multipart())
        if got and got[0].request_id in self._queues:
            self._queues[got[0].request_id].append(got)

    def _poller(self):
        p = zmq.Poller()
        p.register(self._sock, zmq.POLLIN)
        p.register(self._mon, zmq.POLLIN)
        return p

    def _move_on(self, detail=None):
        """To the leader a standby named in detail, else the next endpoint."""
        old = self._eps[self._cur]
        self._cur = w.next_endpoint(self._eps, self._cur, detail)
        self._lost = False
        if self._eps[self._cur] != old:
            self._sock.disconnect(old)
            self._sock.connect(self._eps[self._cur])
            self._conn += 1
            if self._mon is None:  # one endpoint, and a standby pointed elsewhere
                self._mon = w.monitor(self._sock)

    def _start(self, method, request, timeout):
        rid = self._next_id
        self._next_id += 1
        self._queues[rid] = collections.deque()
        self._send(w.request_frames(method, rid, request, self.token, timeout))
        return rid

    def _deadline_of(self, timeout):
        t = self.timeout if timeout is None else timeout
        return (t, None if not t else time.monotonic() + t)

    def call(self, method, request, timeout=None):
        """Any unary method of service loom.v1.Loom by name ("Get", ...)."""
        t, deadline = self._deadline_of(timeout)
        reply_type = w.METHODS[method][1]
        pause = 0.05  # between moves to another loomd, doubling to 0.5 s
        while True:
            if self._lost:
                self._move_on()
            rid = self._start(method, request, t)
            try:
                while not self._queues[rid] and not self._lost:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        self._send(w.cancel_frames(method, rid))
                        raise w.deadline_error(method)
                    self._pump(left)
                got = self._queues[rid].popleft() if self._queues[rid] else None
                standby = got and w.standby_detail(got[0])
                if got and not standby:
                    return w.outcome(got[0], got[1], reply_type)[1]
            finally:
                self._queues.pop(rid, None)
            # a standby answered, or the connection went: the next loomd
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                if got:
                    return w.outcome(got[0], got[1], reply_type)[1]  # raises Unavailable
                raise w.deadline_error(method)
            self._move_on(standby)
            time.sleep(pause if left is None else min(pause, left))
            pause = min(0.5, pause * 2)

    # ---- the API -----------------------------------------------------------

    def health(self, timeout=None):
        return self.call("Health", rpc.HealthRequest(), timeout)

    def submit(self, workflow, inputs=None, *, name=None, idempotency_key=None, labels=None,
               sla_latency_ms=0, objective=None, timeout=None):
        """Starts a run. workflow: a path, YAML text or a file object; inputs:
        a dict; labels: a dict. Returns the SubmitReply (run_id, plan, state)."""
        rq = w.submit_request(workflow, inputs, name, idempotency_key, labels, sla_latency_ms,
                              objective)
        return self.call("Submit", rq, timeout)

    def watch(self, run_id, *, after_seq=0, include_progress=False, run_only=False, timeout=None):
        """A Watch iterator over the run's events (include_progress: also
        STEP_PROGRESS events, i.e. LLM tokens in .text; run_only: only
        run-level events, no STEP_* ones). timeout (s) bounds the whole
        stream; None = until the run ends."""
        rq = rpc.WatchRequest(run_id=run_id, after_seq=after_seq,
                              include_progress=include_progress, run_only=run_only)
        rid = self._start("Watch", rq, timeout)
        return Watch(self, rid, None if not timeout else time.monotonic() + timeout)

    def run(self, workflow, inputs=None, *, on_event=None, include_progress=False, timeout=None,
            **submit_args):
        """Submits, follows the run to its end (on_event(ev) for each event)
        and returns the final Run. timeout bounds the whole run; when it
        passes the run is left running and DeadlineExceeded is raised."""
        start = time.monotonic()
        rep = self.submit(workflow, inputs, **submit_args)
        left = None if not timeout else max(0.001, timeout - (time.monotonic() - start))
        with self.watch(rep.run_id, include_progress=include_progress,
                        run_only=on_event is None, timeout=left) as events:
            for ev in events:
                if on_event:
                    on_event(ev)
        return self.get(rep.run_id)

    def get(self, run_id, timeout=None):
        """The Run with its steps."""
        return self.call("Get", rpc.GetRequest(run_id=run_id), timeout).run

    def list(self, *, state=None, workflow_name=None, limit=0, page_token="", tenant=None,
             labels=None, submitted_after_ms=0, submitted_before_ms=0, timeout=None):
        """One page: a ListReply (runs newest first, next_page_token).
        Filters: state, workflow_name, tenant, labels ({key: value}, runs
        carrying every one), submission time (ms since the epoch)."""
        rq = w.list_request(state, workflow_name, limit, page_token, tenant, labels,
                            submitted_after_ms, submitted_before_ms)
        return self.call("List", rq, timeout)

    def iter_runs(self, *, page_size=100, timeout=None, **filters):
        """Every run (newest first) matching list()'s filters, fetching pages as needed."""
        token = ""
        while True:
            page = self.list(limit=page_size, page_token=token, timeout=timeout, **filters)
            yield from page.runs
            token = page.next_page_token
            if not token:
                return

    def cancel(self, run_id, reason="", timeout=None):
        """Cancels a run; returns its state afterwards (RUN_CANCELLED, or
        the final state it had already reached)."""
        return self.call("Cancel", rpc.CancelRequest(run_id=run_id, reason=reason), timeout).state

    def retry(self, run_id, *, idempotency_key=None, timeout=None):
        """Runs a finished run's workflow again with the same inputs and
        labels (plus retry_of); returns the SubmitReply of the new run."""
        rq = rpc.RetryRequest(run_id=run_id, idempotency_key=idempotency_key or "")
        return self.call("Retry", rq, timeout)

    def plan(self, workflow, inputs=None, *, name=None, sla_latency_ms=0, objective=None,
             fleet_yaml=None, timeout=None):
        """Plans without running (against the live workers, or fleet_yaml)."""
        rq = w.plan_request(workflow, inputs, name, sla_latency_ms, objective, fleet_yaml)
        return self.call("Plan", rq, timeout).plan

    def workers(self, *, kind=None, include_lost=False, timeout=None):
        """The registered workers (WorkerInfo list)."""
        rq = rpc.ListWorkersRequest(kind=kind or 0, include_lost=include_lost)
        return list(self.call("ListWorkers", rq, timeout).workers)


__all__ = ["Client", "Watch", "DeadlineExceeded"]
