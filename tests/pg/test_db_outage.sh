#!/usr/bin/env bash
# PostgreSQL stopped and restarted under load: loomd keeps running work
# (runs submitted before the outage finish during it), /healthz says
# degraded (503) and /metrics loom_db_up 0 meanwhile, submissions made
# during the outage are acknowledged only once their row is durable (after
# the restart), and in the end every acknowledged run is in the database,
# succeeded, with all its tasks and its SLA outcome: no run lost.
. "$(dirname "$(readlink -f "$0")")/pglib.sh"
HP=$(free_port)
start_loomd --db "$DB_URL" --http "127.0.0.1:$HP"
start_worker_bg w1
start_worker_bg w2
health() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HP/healthz"; }
[ "$(health)" = 200 ] || fail "not healthy at start"
mkdir -p "$TMP/fx"
submit() { "$BIN/loom" run "$ROOT/tests/pg/workflows/chain.yaml" --input dir="$TMP/fx" --input pause="$1" --no-wait; }
ids=()
for i in $(seq 8); do ids+=("$(submit 0.05)") || fail "submit $i"; done
long=()
for i in 1 2; do long+=("$(submit 1)") || fail "submit long $i"; done

"$ROOT/deploy/pg.sh" stop "$PGDIR" || fail "cannot stop PostgreSQL"
for _ in $(seq 100); do [ "$(health)" = 503 ] && break; sleep 0.1; done
[ "$(health)" = 503 ] || fail "healthz not degraded while the database is down"
curl -s "http://127.0.0.1:$HP/healthz" | grep -q '"status":"degraded"' || fail "healthz body"
curl -s "http://127.0.0.1:$HP/metrics" | grep -q '^loom_db_up 0$' || fail "metrics db_up"

# work goes on: the long runs finish while the database is down
for id in "${long[@]}"; do
  for _ in $(seq 100); do "$BIN/loom" status "$id" 2>/dev/null | grep -q succeeded && break; sleep 0.1; done
  "$BIN/loom" status "$id" | grep -q succeeded || fail "run $id did not finish during the outage"
done
# submissions during the outage: in the background, they wait for durability
# (made after the long runs are checked, so that their 10 s Submit deadline
# covers only the restart below, even on a loaded machine)
late=()
for i in $(seq 6); do (submit 0.05 >"$TMP/late.$i" 2>"$TMP/late.$i.err") & late+=($!); done
sleep 0.5
acked=$(cat "$TMP"/late.[0-9] 2>/dev/null | grep -c .)
[ "$acked" = 0 ] || fail "$acked submissions acknowledged while the database was down"
curl -s "http://127.0.0.1:$HP/metrics" | grep -Eq '^loom_db_queue_depth [1-9]' || fail "nothing buffered"

"$ROOT/deploy/pg.sh" start "$PGDIR" >/dev/null || fail "cannot restart PostgreSQL"
wait "${late[@]}"
for i in $(seq 6); do
  id=$(cat "$TMP/late.$i")
  [ -n "$id" ] || fail "late submission $i failed: $(cat "$TMP/late.$i.err")"
  ids+=("$id")
done
ids+=("${long[@]}")
for _ in $(seq 100); do [ "$(health)" = 200 ] && break; sleep 0.1; done
[ "$(health)" = 200 ] || fail "healthz not ok after the database came back"
list=$(printf "'%s'," "${ids[@]}"); list=${list%,}
n=${#ids[@]}
wait_for 30 "SELECT count(*) FROM runs WHERE state = 'succeeded' AND id IN ($list)" "$n"
[ "$(q "SELECT count(*) FROM tasks WHERE state = 'succeeded' AND run_id IN ($list)")" = $((3 * n)) ] || fail "tasks missing"
[ "$(q "SELECT count(*) FROM sla_outcomes WHERE run_id IN ($list)")" = "$n" ] || fail "SLA outcomes missing"
[ "$(q "SELECT count(*) FROM runs")" = "$n" ] || fail "unexpected runs"
echo "ok: $n runs, database down for a while, none lost"
