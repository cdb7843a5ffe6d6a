#!/usr/bin/env python3
"""ticket_lookup.py --id T-1001: prints the ticket as one JSON object.

Used by examples/support-rag.yaml (tool.exec). A stand-in for a helpdesk
API: a small fixed ticket table, so runs are reproducible offline.
Exit 0 with JSON on stdout; exit 2 with a message on stderr when unknown."""
import argparse
import json
import sys

TICKETS = {
    "T-1001": {"id": "T-1001", "customer": "acme", "plan": "pro", "status": "open",
               "priority": "high", "subject": "Invoices show the wrong VAT rate",
               "history": ["2026-11-19 customer: VAT is 19% but we are in AT (20%)"]},
    "T-1002": {"id": "T-1002", "customer": "globex", "plan": "free", "status": "open",
               "priority": "low", "subject": "How do I export my data?",
               "history": []},
    "T-1003": {"id": "T-1003", "customer": "initech", "plan": "enterprise", "status": "pending",
               "priority": "high", "subject": "API returns 500 on /v2/reports",
               "history": ["2026-11-20 agent: reproduced, escalated to on-call"]},
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--id", required=True, help="ticket id, e.g. T-1001")
    args = ap.parse_args()
    t = TICKETS.get(args.id.strip().upper())
    if t is None:
        print(f"ticket_lookup: no ticket {args.id!r}", file=sys.stderr)
        return 2
    json.dump(t, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
