#!/usr/bin/env python3
"""corpus_search.py [--k N] QUESTION: keyword search over a small offline
corpus, for examples/research-fanout.yaml (tool.exec, one call per
sub-question). Prints {"question", "hits": [{"id", "score", "text"}]}."""
import argparse
import json
import math
import re
import sys

CORPUS = {
    "hbm": "HBM3e stacks deliver over 1 TB/s per stack; H200 carries 141 GB at 4.8 TB/s.",
    "decode": "LLM decode is memory-bound: each token reads every weight once, so tokens/s "
              "scales with memory bandwidth divided by model size.",
    "prefill": "Prefill is compute-bound: the prompt is processed as a batch of matrix "
               "multiplications, so it scales with tensor-core throughput.",
    "kv": "The KV cache grows with layers x kv_heads x head_dim x context; grouped-query "
          "attention shrinks it by sharing keys and values across heads.",
    "npu": "Edge NPUs run int8 matrix multiplications at a few watts, but have little memory "
           "and usually no support for dynamic shapes.",
    "cpu": "Server CPUs with AMX or AVX-512 can decode small models at useful speeds, "
           "especially with 4-bit or 8-bit weights.",
    "cost": "Cloud GPU prices differ by generation: older cards are cheaper per hour but "
            "slower per token; the cheapest choice depends on the latency target.",
    "disagg": "Disaggregated serving runs prefill and decode on different devices and "
              "moves the KV cache between them over the network.",
}


def tokens(s):
    return re.findall(r"[a-z0-9]+", s.lower())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("question")
    a = ap.parse_args()
    q = set(tokens(a.question))
    n = len(CORPUS)
    df = {}
    for text in CORPUS.values():
        for t in set(tokens(text)):
            df[t] = df.get(t, 0) + 1
    hits = []
    for doc_id, text in CORPUS.items():
        score = sum(math.log(1 + n / df[t]) for t in q if t in set(tokens(text)))
        if score > 0:
            hits.append({"id": doc_id, "score": round(score, 3), "text": text})
    hits.sort(key=lambda h: (-h["score"], h["id"]))
    json.dump({"question": a.question, "hits": hits[:max(1, a.k)]}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
