"""The Dask peer of bench-dispatch: the same shapes on dask.distributed
(LocalCluster, 2 worker processes, 1 thread each, no dashboard), measured
the same way: tasks / wall time from the first submit to the last result.

  independent, one run   : client.map(noop, range(N)) then gather
  independent, many runs : N/100 batches of 100 (map + gather per batch, 500 batches in flight)
  chain, one run         : x = submit(inc, 0); x = submit(inc, x) ... M times
  chain, many runs       : M/100 chains of 100, all submitted before waiting
Per-task latency for the chain is wall time / M (each task waits for the
previous one). Prints "RESULT dask_<key>_rate=..." lines.
usage: dask_dispatch.py N_INDEPENDENT N_CHAIN"""
import sys, time, logging, warnings

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
from dask.distributed import Client, LocalCluster, wait


def noop(x):
    return None


def inc(x):
    return x + 1


def report(key, label, n, secs, lat_us=None):
    lat = f"   per task {lat_us:8.0f} us" if lat_us is not None else ""
    print(f"  {label:28s} {n:9d} tasks {secs:8.3f} s {n/secs:10.0f} tasks/s{lat}", flush=True)
    print(f"RESULT dask_{key}_rate={n/secs:.0f}")
    if lat_us is not None:
        print(f"RESULT dask_{key}_lat_us={lat_us:.0f}")


def main():
    n, m = int(sys.argv[1]), int(sys.argv[2])
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    c = Client(cluster)
    c.gather(c.map(noop, range(100), pure=False))  # warm-up

    t = time.perf_counter()
    c.gather(c.map(noop, range(n), pure=False))
    report("ind_one", "independent, 1 run", n, time.perf_counter() - t)

    t = time.perf_counter()
    futs = []
    for b in range(n // 100):
        futs.append(c.map(noop, range(100), pure=False, key=[f"b{b}-{i}" for i in range(100)]))
    for f in futs:
        c.gather(f)
    report("ind_many", "independent, runs of 100", (n // 100) * 100, time.perf_counter() - t)

    t = time.perf_counter()
    x = c.submit(inc, 0, pure=False)
    for _ in range(m - 1):
        x = c.submit(inc, x, pure=False)
    x.result()
    secs = time.perf_counter() - t
    report("chain_one", "chain, 1 run", m, secs, secs / m * 1e6)

    t = time.perf_counter()
    ends = []
    for _ in range(m // 100):
        x = c.submit(inc, 0, pure=False)
        for _ in range(99):
            x = c.submit(inc, x, pure=False)
        ends.append(x)
    wait(ends)
    report("chain_many", "chains of 100, concurrent", (m // 100) * 100, time.perf_counter() - t)
    c.close()
    cluster.close()


if __name__ == "__main__":
    main()
