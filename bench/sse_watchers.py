#!/usr/bin/python3
"""sse_watchers.py BASE_URL RUN_ID N TOKEN — opens N concurrent server-sent
event streams on /v1/runs/RUN_ID/events (raw asyncio sockets, HTTP/1.1),
waits until every one has its first event, prints "ready SECONDS", then
waits (the caller cancels the run) until every stream has received the
run's final event and `event: end`, and prints "ended SECONDS COUNT" (time
from "ready" to the last end). Exits 1 when a stream fails."""
import asyncio
import sys
import time
from urllib.parse import urlparse


async def watch(host, port, path, token, first, done, errors):
    try:
        r, w = await asyncio.open_connection(host, port)
        w.write(("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
                 "Authorization: Bearer %s\r\n\r\n" % (path, host, token)).encode())
        await w.drain()
        status = await r.readline()
        if b" 200 " not in status:
            raise RuntimeError(status.decode(errors="replace").strip())
        got_first = False
        while True:
            line = await r.readline()
            if not line:
                raise RuntimeError("closed before the end event")
            if line.startswith(b"id: ") and not got_first:
                got_first = True
                first.release()
            if line.startswith(b"event: end"):
                done.release()
                w.close()
                return
    except Exception as e:  # counted, reported by the caller
        errors.append(str(e))
        first.release()
        done.release()


async def main():
    base, run, n, token = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    u = urlparse(base)
    first, done = asyncio.Semaphore(0), asyncio.Semaphore(0)
    errors = []
    t0 = time.monotonic()
    tasks = [asyncio.ensure_future(watch(u.hostname, u.port, "/v1/runs/%s/events" % run, token,
                                         first, done, errors)) for _ in range(n)]
    for _ in range(n):
        await first.acquire()
    ready = time.monotonic()
    print("ready %.3f" % (ready - t0), flush=True)
    sys.stdin.readline()  # the caller cancels the run, then writes a line
    t1 = time.monotonic()
    for _ in range(n):
        await done.acquire()
    print("ended %.3f %d" % (time.monotonic() - t1, n - len(errors)), flush=True)
    await asyncio.gather(*tasks)
    if errors:
        print("errors: %d, e.g. %s" % (len(errors), errors[0]), flush=True)
        sys.exit(1)


asyncio.run(main())
