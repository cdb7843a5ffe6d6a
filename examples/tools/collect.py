#!/usr/bin/env python3
"""collect.py FIELD: reads a JSON list of objects on stdin and prints the
list of their FIELD values (numbers; missing or non-numeric values become
0.0). Used by examples/research-fanout.yaml to gather the per-answer
confidence scores into one vector for the softmax kernel."""
import json
import sys


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        items = json.load(sys.stdin)
    except json.JSONDecodeError as e:
        print(f"collect: stdin is not JSON: {e}", file=sys.stderr)
        return 1
    if not isinstance(items, list):
        print("collect: stdin must be a JSON list", file=sys.stderr)
        return 1
    out = []
    for it in items:
        v = it.get(argv[1]) if isinstance(it, dict) else None
        out.append(float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0)
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
