#!/usr/bin/env bash
# bench/kv_rss.sh — part of `make bench-kv`: loomd's memory and the
# PostgreSQL bytes of a run do not grow with the KV cache or the step
# output it hands over. Under a real loomd --db (a throwaway PostgreSQL from
# deploy/pg.sh; without one, the in-memory store and no PostgreSQL figures):
#   - a thin model with TinyLlama's KV shape (44 KiB per token) prefilled on
#     worker wp and decoded on wd, the cache by reference;
#   - a tool.exec step writing a large JSON output (MB_REF MiB) that the next
#     step hashes, the output by reference (loomd --output-ref-bytes);
# and, as the peers measured in the same run (the way it was before):
#   - a split run whose cache travels inline through loomd (kv_transfer:
#     inline; base64 in the task JSON);
#   - a second loomd with --output-ref-bytes off, the tool output (MB_INL MiB)
#     inline.
# loomd's RSS is its VmHWM (the peak) after each run; PostgreSQL bytes are
# the text size of the run's rows (runs, tasks, events). Inline sizes are capped by loomd's
# 16 MiB frame limit (~300 tokens of this KV shape).
# Usage: kv_rss.sh [TOKENS_BY_REFERENCE] [TOKENS_INLINE] [MB_REF] [MB_INL]
#        (default 2048 256 100 12)
. "$(dirname "$(readlink -f "$0")")/../tests/integration/lib.sh"
PY=/usr/bin/python3
NREF=${1:-2048}
NINL=${2:-256}
MBREF=${3:-100}
MBINL=${4:-12}
MODEL="$BUILD/bench-kv/tinyllama-kv.gguf"
if [ ! -f "$MODEL" ]; then
  mkdir -p "$BUILD/bench-kv"
  "$PY" "$ROOT/tests/llm/gen_gguf.py" --shape tinyllama-kv --type F16 --fast -o "$MODEL" >/dev/null || fail "gen model"
fi
MODEL=$(readlink -f "$MODEL")
export LOOM_OBJECT_DIR="$TMP/objects" LOOM_LOG_LEVEL=warn

PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/loom-pg.XXXXXX")
trap '"$ROOT/deploy/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"; cleanup' EXIT
DB=()
if DB_URL=$("$ROOT/deploy/pg.sh" start "$PGDIR" 2>/dev/null); then
  DB=(--db "$DB_URL")
else
  echo "bench-kv: PostgreSQL could not start; loomd keeps runs in memory (no PostgreSQL figures)"
fi
# pg_bytes RUN: the bytes of the run's rows once its final state is committed.
pg_bytes() {
  [ ${#DB[@]} -gt 0 ] || { echo "-"; return; }
  for _ in $(seq 200); do
    [ "$(psql "$DB_URL" -XAtq -c "SELECT state FROM runs WHERE id = '$1'")" = succeeded ] && break
    sleep 0.1
  done
  # the rows' text form: what they hold before PostgreSQL's compression
  # (this bench's payloads are repetitive and would compress away)
  psql "$DB_URL" -XAtq -c "SELECT
    (SELECT coalesce(sum(octet_length(r::text)), 0) FROM runs r WHERE id = '$1') +
    (SELECT coalesce(sum(octet_length(t::text)), 0) FROM tasks t WHERE run_id = '$1') +
    (SELECT coalesce(sum(octet_length(e::text)), 0) FROM events e WHERE run_id = '$1')"
}

start_loomd "${DB[@]}"
start_worker wp --ops llm.prefill,echo
start_worker wd --ops llm.decode
start_worker wt --ops tool.exec

hwm() { awk '/^VmHWM/ {print $2}' "/proc/$LOOMD_PID/status"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$LOOMD_PID/status"; }

# run FILE [--input ...]: runs a workflow; sets RUN (its id), OUT (JSON file)
run() {
  local f=$1; shift
  OUT="$TMP/out.json"
  "$BIN/loom" run "$f" "$@" --json --timeout-ms 600000 >"$OUT" 2>"$TMP/run.log" ||
    fail "run of $f failed: $(cat "$TMP/run.log" "$OUT" | head -c 2000)"
  RUN=$(jget "$OUT" 'd["run_id"]')
}

# split N TRANSFER: one prefill (N words, raw) + decode of 4 tokens.
split() {
  local prompt; prompt=$("$PY" -c "import sys; print(' '.join(['the'] * int(sys.argv[1])))" "$1")
  cat >"$TMP/split.yaml" <<YAML
version: 1
name: kv-rss
sla: {latency_ms: 600000}
resources:
  models:
    m: {path: "$MODEL", arch: llama, layers: 22, hidden: 256, heads: 4, kv_heads: 4, vocab: 32000, context: 8192, dtype: f16}
steps:
  pre: {op: llm.prefill, model: m, raw: true, prompt: "$prompt", kv_transfer: $2}
  dec: {op: llm.decode, model: m, prefill: pre, max_tokens: 4}
outputs:
  text: \${steps.dec.output}
  tokens: \${steps.pre.output.prompt_tokens}
YAML
  run "$TMP/split.yaml"
  TOKENS=$(jget "$OUT" 'd["outputs"]["tokens"]')
}

# A tool writes {"blob": "<MiB>", ...}; the next step hashes what it got.
cat >"$TMP/tool.yaml" <<'YAML'
version: 1
name: big-output
sla: {latency_ms: 600000}
inputs:
  bytes: string
steps:
  make:
    op: tool.exec
    argv: [/usr/bin/python3, -c, "import sys; n = int(sys.argv[1]); sys.stdout.write('{\"blob\": \"%s\", \"n\": %d}' % ('ab' * (n // 2), n))", "${inputs.bytes}"]
    max_output_bytes: 400000000
  hash:
    op: tool.exec
    argv: [/usr/bin/python3, -c, "import hashlib, json, sys; b = json.load(sys.stdin)['blob'].encode(); print(json.dumps({'len': len(b), 'sha256': hashlib.sha256(b).hexdigest()}))"]
    stdin: ${steps.make.output}
outputs:
  hash: ${steps.hash.output}
YAML
# tool MIB: the big-output run with MIB MiB; checks what arrived.
tool() {
  local n=$(($1 * 1048576))
  run "$TMP/tool.yaml" --input bytes="$n"
  "$PY" -c '
import hashlib, json, sys
h = json.load(open(sys.argv[1]))["outputs"]["hash"]
n = int(sys.argv[2])
assert h == {"len": n, "sha256": hashlib.sha256(b"ab" * (n // 2)).hexdigest()}, h' "$OUT" "$n" ||
    fail "the tool output did not arrive intact"
}

cat >"$TMP/empty.yaml" <<YAML
version: 1
name: empty
steps:
  e: {op: echo, value: 1}
outputs:
  v: \${steps.e.output}
YAML
line() { printf '  %-44s %8d KiB %-12s %10s B in PostgreSQL  %s\n' "$1" "$2" "$3" "$4" "$5"; }
echo "bench-kv (loomd memory, PostgreSQL bytes per run): loomd VmHWM (peak RSS) after each run"
run "$TMP/empty.yaml"
base=$(hwm)
line "empty run (echo)" "$base" "" "$(pg_bytes "$RUN")" ""
t0=$(date +%s.%N)
split "$NREF" reference
t1=$(date +%s.%N)
after_ref=$(hwm)
line "$TOKENS-token KV by reference" "$after_ref" "(+$((after_ref - base)))" "$(pg_bytes "$RUN")" \
  "cache $(awk -v t="$TOKENS" 'BEGIN{printf "%.1f", t*45056/1048576}') MiB; run $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s"
t0=$(date +%s.%N)
tool "$MBREF"
t1=$(date +%s.%N)
after_tool=$(hwm)
line "$MBREF MiB tool output by reference" "$after_tool" "(+$((after_tool - after_ref)))" "$(pg_bytes "$RUN")" \
  "hashed intact downstream; run $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s"
split "$NINL" inline
after_inl=$(hwm)
line "$TOKENS-token KV inline (peer)" "$after_inl" "(+$((after_inl - after_tool)))" "$(pg_bytes "$RUN")" \
  "cache $(awk -v t="$TOKENS" 'BEGIN{printf "%.1f", t*45056/1048576}') MiB, base64 through loomd"
echo "  (RSS now $(rss) KiB)"

# The peer for outputs: a fresh loomd that keeps every output inline.
kill -TERM "$LOOMD_PID"; wait "$LOOMD_PID" 2>/dev/null
rm -f "$TMP/ready"
"$BIN/loomd" --client "$CLIENT_EP" --workers "$WORKER_EP" --ready-file "$TMP/ready" "${DB[@]}" \
  --output-ref-bytes off >>"$TMP/loomd.log" 2>&1 &
LOOMD_PID=$!; PIDS+=("$LOOMD_PID")
for _ in $(seq 200); do [ -f "$TMP/ready" ] && break; sleep 0.05; done
for w in wp wd wt; do
  for _ in $(seq 200); do "$BIN/loom" workers --json 2>/dev/null | grep -q "\"id\": \"$w\"" && break; sleep 0.05; done
done
run "$TMP/empty.yaml"
base=$(hwm)
line "fresh loomd --output-ref-bytes off: empty run" "$base" "" "$(pg_bytes "$RUN")" ""
tool "$MBINL"
after=$(hwm)
line "$MBINL MiB tool output inline (peer)" "$after" "(+$((after - base)))" "$(pg_bytes "$RUN")" "through loomd and the store"
echo "  (machine: $(nproc) cores shared with other work; load: $(cut -d' ' -f1-3 /proc/loadavg))"
