#!/usr/bin/env bash
# bench/kv_rss.sh — part of `make bench-kv`: loomd's memory does not grow
# with the KV cache it hands over. A thin model with TinyLlama's KV shape
# (44 KiB per token) is prefilled on worker wp and decoded on wd under a real
# loomd; loomd's RSS (VmHWM, the peak) is read after an empty run, after a
# split run whose cache travels by reference, and, as the peer measured in
# the same run, after one whose cache travels inline through loomd
# (kv_transfer: inline; base64 in the task JSON, the way it was before).
# Usage: kv_rss.sh [TOKENS_BY_REFERENCE] [TOKENS_INLINE]  (default 2048 256;
# inline is capped by loomd's 16 MiB frame limit: ~300 tokens of this shape).
. "$(dirname "$(readlink -f "$0")")/../tests/integration/lib.sh"
PY=/usr/bin/python3
NREF=${1:-2048}
NINL=${2:-256}
MODEL="$BUILD/bench-kv/tinyllama-kv.gguf"
if [ ! -f "$MODEL" ]; then
  mkdir -p "$BUILD/bench-kv"
  "$PY" "$ROOT/tests/llm/gen_gguf.py" --shape tinyllama-kv --type F16 --fast -o "$MODEL" >/dev/null || fail "gen model"
fi
MODEL=$(readlink -f "$MODEL")
export LOOM_OBJECT_DIR="$TMP/objects" LOOM_LOG_LEVEL=warn
start_loomd
start_worker wp --ops llm.prefill,echo
start_worker wd --ops llm.decode

hwm() { awk '/^VmHWM/ {print $2}' "/proc/$LOOMD_PID/status"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$LOOMD_PID/status"; }

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
  "$BIN/loom" run "$TMP/split.yaml" --json --timeout-ms 600000 >"$TMP/out.json" 2>"$TMP/run.log" ||
    fail "split run ($1 tokens, $2) failed: $(cat "$TMP/run.log" "$TMP/out.json" | head -c 2000)"
  TOKENS=$(jget "$TMP/out.json" 'd["outputs"]["tokens"]')
}

cat >"$TMP/empty.yaml" <<YAML
version: 1
name: empty
steps:
  e: {op: echo, value: 1}
outputs:
  v: \${steps.e.output}
YAML
"$BIN/loom" run "$TMP/empty.yaml" --json >/dev/null 2>&1 || fail "empty run failed"
base=$(hwm)
echo "bench-kv (loomd memory): KV of the TinyLlama shape, 44 KiB per token; loomd VmHWM (peak RSS)"
printf '  %-34s %8d KiB\n' "after an empty run" "$base"
t0=$(date +%s.%N)
split "$NREF" reference
t1=$(date +%s.%N)
after_ref=$(hwm)
printf '  %-34s %8d KiB  (+%d KiB; cache %.1f MiB; run %.1f s)\n' "after $TOKENS tokens by reference" "$after_ref" \
  $((after_ref - base)) "$(awk -v t="$TOKENS" 'BEGIN{print t*45056/1048576}')" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')"
split "$NINL" inline
after_inl=$(hwm)
printf '  %-34s %8d KiB  (+%d KiB; cache %.1f MiB, base64 through loomd)\n' "after $TOKENS tokens inline" "$after_inl" \
  $((after_inl - after_ref)) "$(awk -v t="$TOKENS" 'BEGIN{print t*45056/1048576}')"
echo "  (machine: $(nproc) cores shared with other builds; RSS now $(rss) KiB)"
