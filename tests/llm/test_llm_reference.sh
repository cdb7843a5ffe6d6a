#!/usr/bin/env bash
# LLM CPU backend vs the independent NumPy reference (tests/llm/reference.py)
# on generated GGUF models: llama and bert, every tensor type, every SIMD
# level the CPU has (scalar, avx2, avx512); tokenizers against the
# reference and round trips; greedy tokens; prefill + decode split ==
# unsplit generation.
set -u
BUILD=${BUILD:-build}
HERE=$(dirname "$(readlink -f "$0")")
L="$BUILD/bin/loom llm"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
  echo "skip: python3-numpy is not installed (run make deps)"; exit 77
fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail=0
ok()  { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
gen() { "$PY" "$HERE/gen_gguf.py" "$@" || { echo "generator failed: $*"; exit 1; }; }
ref() { "$PY" "$HERE/reference.py" "$@"; }

# 18 positions: prefill batches of 16 or more take the token-vector GEMM
IDS="1 20 30 40 50 60 7 300 200 100 33 44 5 6 8 9 10 11"
CIDS=${IDS// /,}
for ty in F32 F16 BF16 Q8_0 Q4_0; do
  gen --arch llama --type "$ty" -o "$T/l_$ty.gguf"
  files=""
  for simd in scalar avx2 avx512; do
    have=$(LOOM_LLM_SIMD=$simd $L info "$T/l_$ty.gguf" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["simd"])')
    case "$have" in "$simd"*) ;; *) echo "skip llama $ty logits ($simd): this CPU runs $have"; continue ;; esac
    if LOOM_LLM_SIMD=$simd $L logits "$T/l_$ty.gguf" -i "$CIDS" -o "$T/lg_$simd.bin" -t 2; then
      files="$files${files:+,}$T/lg_$simd.bin"
    else bad "llama $ty logits ($simd): loom llm failed"; fi
  done
  # one reference forward for every level's logits, one line per level
  while IFS= read -r line; do
    f=${line%%: *}; simd=${f##*/lg_}; simd=${simd%.bin}
    case "$line" in *"tolerance"*identical) ok "llama $ty logits ($simd): ${line#*: }" ;;
                    *) bad "llama $ty logits ($simd): ${line#*: }" ;; esac
  done < <(ref compare-logits "$T/l_$ty.gguf" "$files," 1e-3 $IDS)
  want=$(ref greedy "$T/l_$ty.gguf" 8 1 20 30 40)
  got=$($L generate "$T/l_$ty.gguf" -i 1,20,30,40 -n 8 --json | "$PY" -c 'import json,sys; print(" ".join(map(str, json.load(sys.stdin)["tokens"])))')
  [ "$got" = "$want" ] && ok "llama $ty greedy tokens $got" || bad "llama $ty greedy: got '$got' want '$want'"
  gen --arch bert --type "$ty" -o "$T/b_$ty.gguf"
  if $L embed "$T/b_$ty.gguf" -i 2,40,50,60,70,80,3 > "$T/emb.txt" &&
     out=$(ref compare-embed "$T/b_$ty.gguf" "$T/emb.txt" 1e-3 2 40 50 60 70 80 3); then
    ok "bert $ty embedding: $out"
  else bad "bert $ty embedding: ${out:-loom llm failed}"; fi
done

# Variants: tied head, Qwen2-style biases, linear RoPE scaling, CLS pooling.
gen --arch llama --type Q8_0 --tied -o "$T/tied.gguf"
gen --arch llama --type F32 --bias -o "$T/bias.gguf"
gen --arch llama --type F16 --rope-linear 4 --rope-base 500000 -o "$T/rope.gguf"
for v in tied bias rope; do
  if $L logits "$T/$v.gguf" -i "$CIDS" -o "$T/lg.bin" && out=$(ref compare-logits "$T/$v.gguf" "$T/lg.bin" 1e-3 $IDS); then
    ok "llama variant $v: $out"; else bad "llama variant $v: ${out:-loom llm failed}"; fi
done
gen --arch bert --type F32 --pooling cls -o "$T/cls.gguf"
if $L embed "$T/cls.gguf" -i 2,40,50,3 > "$T/emb.txt" && out=$(ref compare-embed "$T/cls.gguf" "$T/emb.txt" 1e-3 2 40 50 3); then
  ok "bert cls pooling: $out"; else bad "bert cls pooling: ${out:-loom llm failed}"; fi

# Tokenizers: ids equal the reference's, text round-trips.
texts=("Hello world" "The quick brown fox jumps over the lazy dog." "  two  spaces and a tab	here"
       "Numbers 42, 1024 and 3.14!" "ünïcödé — 日本語 ✓" "<|user|>\nWhat is the capital of France?<|assistant|>"
       "It's the engineers' job" "x")
for m in l_F32 b_F32; do
  for s in "${texts[@]}"; do
    s=$(printf '%b' "$s")
    want=$(ref tokenize "$T/$m.gguf" "$s"); got=$($L tokenize "$T/$m.gguf" -p "$s")
    [ "$got" = "$want" ] || bad "tokenize ($m) '$s': got '$got' want '$want'"
    back=$($L detokenize "$T/$m.gguf" -i "${got// /,}")
    [ "$back" = "$s" ] || bad "round trip ($m) '$s' -> '$back'"
  done
  ok "tokenizer $m: ${#texts[@]} texts match the reference and round-trip"
done

# Split: prefill on one context (1 thread), decode on another (2 threads)
# equals one generate call, greedy and seeded sampling.
for args in "-n 12" "-n 12 --temp 0.9 --top-k 40 --top-p 0.95 --seed 7"; do
  for ty in F32 Q4_0; do
    un=$($L generate "$T/l_$ty.gguf" -p "The quick brown fox" $args --json -t 2 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["tokens"])')
    $L prefill "$T/l_$ty.gguf" -p "The quick brown fox" -o "$T/kv.bin" -t 1 || bad "prefill $ty"
    sp=$($L decode "$T/l_$ty.gguf" --kv "$T/kv.bin" $args --json -t 2 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["tokens"])')
    [ -n "$un" ] && [ "$un" = "$sp" ] && ok "split == unsplit ($ty, $args): $un" || bad "split ($ty, $args): unsplit $un split $sp"
  done
done

# Stop strings end the text before the stop string; max tokens is obeyed.
full=$($L generate "$T/l_F32.gguf" -p "The" -n 16 --json)
stop=$(echo "$full" | "$PY" -c 'import json,re,sys; t=json.load(sys.stdin)["text"]; m=re.search(r"[A-Za-z]{2}", t[2:]); print(m.group(0) if m else "")')
if [ -n "$stop" ]; then
  got=$($L generate "$T/l_F32.gguf" -p "The" -n 16 --stop "$stop" --json)
  if echo "$full" "$got" | "$PY" -c '
import json,sys
a,b=[json.loads(l) for l in sys.stdin.read().replace("} {","}\n{").splitlines()]
s=sys.argv[1]; want=a["text"][:a["text"].find(s)]
sys.exit(0 if b["finish_reason"]=="stop" and b["text"]==want else 1)' "$stop"; then
    ok "stop string '$stop' cuts the text before it"
  else bad "stop string '$stop': $got (full: $full)"; fi
fi
n=$($L generate "$T/l_F32.gguf" -p "The" -n 5 --json | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["generated_tokens"], d["finish_reason"])')
[ "$n" = "5 length" ] && ok "max tokens 5: $n" || bad "max tokens: $n"

# Clear errors: KV cache of another model, prompt beyond the context.
$L prefill "$T/l_F32.gguf" -i 1,2,3 -o "$T/kv.bin"
if out=$($L decode "$T/l_F16.gguf" --kv "$T/kv.bin" 2>&1); then bad "decode with another model's cache succeeded"
else echo "$out" | grep -q "different model" && ok "foreign KV cache: $out" || bad "foreign KV cache: $out"; fi
if out=$($L generate "$T/l_F32.gguf" -i "$(seq -s, 1 300)" 2>&1); then bad "prompt longer than the context accepted"
else echo "$out" | grep -q "does not fit the context" && ok "long prompt: $out" || bad "long prompt: $out"; fi
exit $fail
