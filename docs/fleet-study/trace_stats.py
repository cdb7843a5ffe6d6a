#!/usr/bin/python3
"""Request-size and arrival statistics of the Azure LLM inference trace 2023.

Reads one or more AzureLLMInferenceTrace_{code,conv}.csv files (columns
TIMESTAMP, ContextTokens, GeneratedTokens; from
github.com/Azure/AzurePublicDataset, data/) and prints, per file: number of
requests, median / p90 / p99 of prompt (ContextTokens) and output
(GeneratedTokens) tokens, mean arrival rate over the trace's span, the
busiest whole minute's rate and the coefficient of variation of
inter-arrival times (1 for Poisson arrivals). Percentiles, the median
included, are nearest-rank (the value at rank ceil(p*n)).

usage: trace_stats.py [--json] FILE.csv...
"""
import collections
import csv
import datetime
import json
import math
import statistics
import sys


def nearest_rank(sorted_vals, p):
    return sorted_vals[max(0, math.ceil(p * len(sorted_vals)) - 1)]


def file_stats(path):
    times, ctx, gen = [], [], []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]:
            raise ValueError(f"{path}:1: unexpected header {header}")
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                ts = datetime.datetime.strptime(row[0][:26], "%Y-%m-%d %H:%M:%S.%f")
                times.append(ts.timestamp())
                ctx.append(int(row[1]))
                gen.append(int(row[2]))
            except (ValueError, IndexError) as e:
                raise ValueError(f"{path}:{lineno}: bad row {row}: {e}") from None
    if len(times) < 2:
        raise ValueError(f"{path}: fewer than 2 requests")
    times.sort()
    gaps = [b - a for a, b in zip(times, times[1:])]
    span = times[-1] - times[0]
    mean_gap = statistics.fmean(gaps)
    per_minute = collections.Counter(int((t - times[0]) // 60) for t in times)
    out = {"file": path, "requests": len(times), "span_s": round(span, 1),
           "rate_per_s": round((len(times) - 1) / span, 3),
           "peak_minute_rate_per_s": round(max(per_minute.values()) / 60, 2),
           "interarrival_cv": round(statistics.pstdev(gaps) / mean_gap, 2)}
    for name, vals in (("prompt", sorted(ctx)), ("output", sorted(gen))):
        out[name] = {"median": nearest_rank(vals, 0.50),
                     "p90": nearest_rank(vals, 0.90),
                     "p99": nearest_rank(vals, 0.99),
                     "mean": round(statistics.fmean(vals), 1)}
    return out


def main(argv):
    as_json = "--json" in argv
    files = [a for a in argv if a != "--json"]
    if not files or "-h" in files or "--help" in files:
        print(__doc__.strip())
        return 0 if files else 2
    try:
        results = [file_stats(p) for p in files]
    except (OSError, ValueError) as e:
        print(f"trace_stats: {e}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(f"{r['file']}: {r['requests']} requests over {r['span_s']} s, "
              f"{r['rate_per_s']} req/s (busiest minute "
              f"{r['peak_minute_rate_per_s']} req/s), "
              f"inter-arrival CV {r['interarrival_cv']}")
        for name in ("prompt", "output"):
            s = r[name]
            print(f"  {name:6} tokens: median {s['median']}, p90 {s['p90']}, "
                  f"p99 {s['p99']}, mean {s['mean']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
