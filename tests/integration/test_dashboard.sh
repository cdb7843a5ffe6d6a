#!/usr/bin/env bash
# The operator dashboard with the in-memory store: every page (runs list
# with filters and paging, run page with fan-out items, Gantt, cancel and
# retry, fleet, history) in headless Chromium against a real loomd with a
# bearer token (typed into the page) and two CPU workers
# (tests/integration/dashboard.sh, dashboard_cdp.py).
. "$(dirname "$(readlink -f "$0")")/lib.sh"
HP=$(free_port)
export LOOM_AUTH_TOKEN=dash-token # behind auth: the page asks for it, cancel/retry send it
start_loomd --auth-token "$LOOM_AUTH_TOKEN" --http "127.0.0.1:$HP"
STORE=mem
. "$ROOT/tests/integration/dashboard.sh"
echo ok
