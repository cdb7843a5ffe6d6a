#!/usr/bin/env python3
"""gen_gguf.py — writes small GGUF v3 model files for Loom's LLM tests.

No model can be downloaded on the build machines, so the tests make their own:
random weights (seeded, so every run is the same) and a real small vocabulary
trained here with byte-pair encoding on a built-in English text.

  gen_gguf.py --arch llama --type Q8_0 -o tiny.gguf      SentencePiece-style BPE
  gen_gguf.py --arch bert  --type F16  -o enc.gguf       byte-level BPE (gpt2)
  gen_gguf.py --shape tinyllama --type Q8_0 -o big.gguf  TinyLlama-1.1B shape

Tensor types F32, F16, BF16, Q8_0, Q4_0 use ggml's exact layouts:
  Q8_0 block (34 B) = fp16 scale d + 32 int8 q,            x = q * d
  Q4_0 block (18 B) = fp16 scale d + 16 bytes of nibbles,  x = (q - 8) * d
  (byte j holds element j in its low nibble and element j+16 in its high one)
1-D tensors (norms, biases) stay F32, as llama.cpp's converter does.
"""
import argparse
import struct
import sys

import numpy as np

GGUF_MAGIC = 0x46554747
ALIGN = 32
# GGUF metadata value types
T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64 = range(13)
# ggml tensor types
GGML = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 8, "BF16": 30}
# general.file_type is llama.cpp's llama_ftype (LLAMA_FTYPE_MOSTLY_*), not a
# tensor type: Q8_0 is 7 there (8 would be Q5_0), BF16 is 32.
FTYPE = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 7, "BF16": 32}

CORPUS = """
The quick brown fox jumps over the lazy dog. A workflow runs steps on many
machines: a planner chooses where each step runs, and the orchestrator keeps
the promise. Large language models read a prompt, then write one token at a
time. The cache of keys and values grows with every token; a prefill on one
device can hand its cache to a decode on another device. Retrieval finds the
documents that are nearest to the question, and the answer cites them.
Hello world! Numbers like 42, 1024 and 3.14 appear in text too. It's the
engineers' job to measure, not to guess. What is the capital of France? Paris
is the capital of France. The weather today is sunny with a light breeze.
Tokens, vectors, layers, heads and norms: these are the parts of a model.
"""


# ---------------------------------------------------------------- vocab ----
def train_merges(words, n_merges):
    """Plain BPE training: words is a list of symbol tuples (with counts)."""
    vocab = {}
    for w in words:
        vocab[w] = vocab.get(w, 0) + 1
    merges = []
    for _ in range(n_merges):
        pairs = {}
        for w, c in vocab.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + c
        if not pairs:
            break
        best = max(sorted(pairs), key=lambda p: pairs[p])
        if pairs[best] < 2:
            break
        merges.append(best)
        nv = {}
        for w, c in vocab.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            nv[tuple(out)] = nv.get(tuple(out), 0) + c
        vocab = nv
    return merges


def spm_vocab(n_merges=300):
    """SentencePiece-style vocabulary: <unk> <s> </s>, 256 byte tokens,
    characters, then merged pieces scored by merge rank (higher = earlier)."""
    text = " ".join(CORPUS.split())
    words = [tuple("\u2581" + w) for w in text.split(" ")]
    merges = train_merges(words, n_merges)
    tokens, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
    for b in range(256):
        tokens.append("<0x%02X>" % b)
        scores.append(0.0)
        types.append(6)
    chars = sorted(set("".join("".join(w) for w in words)))
    for c in chars:
        tokens.append(c)
        scores.append(-1000.0)
        types.append(1)
    seen = set(tokens)
    for rank, (a, b) in enumerate(merges):
        t = a + b
        if t in seen:
            continue
        seen.add(t)
        tokens.append(t)
        scores.append(-float(rank))
        types.append(1)
    for t in ["<|user|>", "<|assistant|>", "<|system|>"]:
        tokens.append(t)
        scores.append(0.0)
        types.append(4)  # user-defined: matched verbatim in the text
    return tokens, scores, types


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character mapping."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def gpt2_pretokenize(text):
    """Approximation of GPT-2's split regex shared with the C tokenizer:
    letters = ASCII letters and every non-ASCII character, digits = 0-9."""
    import reference
    return reference.gpt2_split(text)


def gpt2_vocab(n_merges=300):
    b2u = bytes_to_unicode()
    text = " ".join(CORPUS.split())
    words = []
    for piece in gpt2_pretokenize(text):
        words.append(tuple(b2u[b] for b in piece))
    merges = train_merges(words, n_merges)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "<|endoftext|>"]
    types = [3, 2, 3, 3, 3]
    for b in range(256):
        tokens.append(b2u[b])
        types.append(1)
    seen = set(tokens)
    for a, b in merges:
        t = a + b
        if t not in seen:
            seen.add(t)
            tokens.append(t)
            types.append(1)
    return tokens, types, [a + " " + b for a, b in merges]


# ---------------------------------------------------------- quantising ----
def f16_bits(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16)


def bf16_bytes(x):
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    # round to nearest even, as ggml's fp32 -> bf16 does (no NaNs here)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16).tobytes()


def q8_0(x):
    x = np.asarray(x, dtype=np.float32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    d = amax / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0)
    q = np.round(x * inv[:, None]).astype(np.int8)
    out = np.empty((x.shape[0], 34), dtype=np.uint8)
    out[:, :2] = f16_bits(d).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def q4_0(x):
    x = np.asarray(x, dtype=np.float32).reshape(-1, 32)
    # ggml: d = max / -8 where max is the signed value of largest magnitude
    idx = np.abs(x).argmax(axis=1)
    mx = x[np.arange(x.shape[0]), idx]
    d = mx / -8.0
    inv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0)
    q = np.minimum(15, (x * inv[:, None] + 8.5).astype(np.int8)).astype(np.uint8)
    out = np.empty((x.shape[0], 18), dtype=np.uint8)
    out[:, :2] = f16_bits(d).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def encode_tensor(x, ttype):
    if ttype == "F32":
        return np.asarray(x, dtype=np.float32).tobytes()
    if ttype == "F16":
        return f16_bits(x).tobytes()
    if ttype == "BF16":
        return bf16_bytes(x)
    if ttype == "Q8_0":
        return q8_0(x)
    if ttype == "Q4_0":
        return q4_0(x)
    raise ValueError(ttype)


# --------------------------------------------------------------- writer ----
class Writer:
    def __init__(self):
        self.kv = []       # (key, type, payload bytes)
        self.tensors = []  # (name, ne list, ggml type name, data bytes)

    @staticmethod
    def s(v):
        b = v.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def add(self, key, vtype, value):
        self.kv.append((key, vtype, self.scalar(vtype, value)))

    def scalar(self, vtype, v):
        fmt = {T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I", T_I32: "<i",
               T_F32: "<f", T_BOOL: "<?", T_U64: "<Q", T_I64: "<q", T_F64: "<d"}
        if vtype == T_STR:
            return self.s(v)
        return struct.pack(fmt[vtype], v)

    def add_array(self, key, etype, values):
        p = struct.pack("<IQ", etype, len(values))
        if etype == T_F32:
            p += np.asarray(values, dtype=np.float32).tobytes()
        elif etype == T_I32:
            p += np.asarray(values, dtype=np.int32).tobytes()
        else:
            p += b"".join(self.scalar(etype, v) for v in values)
        self.kv.append((key, T_ARR, p))

    def tensor(self, name, ne, ttype, data):
        self.tensors.append((name, ne, ttype, data))

    def write(self, path):
        with open(path, "wb") as f:
            f.write(struct.pack("<IIQQ", GGUF_MAGIC, 3, len(self.tensors), len(self.kv)))
            for k, t, p in self.kv:
                f.write(self.s(k) + struct.pack("<I", t) + p)
            off = 0
            for name, ne, ttype, data in self.tensors:
                f.write(self.s(name) + struct.pack("<I", len(ne)))
                f.write(struct.pack("<%dQ" % len(ne), *ne))
                f.write(struct.pack("<IQ", GGML[ttype], off))
                off += (len(data) + ALIGN - 1) // ALIGN * ALIGN
            pos = f.tell()
            f.write(b"\0" * ((ALIGN - pos % ALIGN) % ALIGN))
            for name, ne, ttype, data in self.tensors:
                f.write(data)
                f.write(b"\0" * ((ALIGN - len(data) % ALIGN) % ALIGN))


SHAPES = {
    # name: dim, layers, heads, kv heads, ffn, ctx
    "tiny": (64, 2, 4, 2, 160, 256),
    "tinyllama": (2048, 22, 32, 4, 5632, 2048),
    # TinyLlama's KV shape (22 layers x 4 KV heads x 64: 44 KiB per token)
    # on a thin model, so bench-kv can prefill thousands of tokens quickly.
    "tinyllama-kv": (256, 22, 4, 4, 512, 8192),
    # a thin model with the tiny vocabulary whose prefill of a few hundred
    # tokens takes a visible while (tests/llm/test_kv_stream_split.sh)
    "thin": (256, 12, 4, 4, 512, 4096),
}


def rand(rng, shape, scale, fast):
    if fast:  # bench models: values need not be Gaussian, just plausible
        return (rng.random(shape, dtype=np.float32) - 0.5) * (scale * 3.4)
    return rng.standard_normal(shape).astype(np.float32) * scale


def write_llama(args, w, rng):
    dim, layers, heads, kvh, ffn, ctx = SHAPES[args.shape]
    ctx = args.ctx or ctx
    tokens, scores, types = spm_vocab()
    if args.shape not in ("tiny", "thin"):
        while len(tokens) < 32000:  # real vocabulary size, unused filler tokens
            tokens.append("<extra_%d>" % len(tokens))
            scores.append(-1e9)
            types.append(5)
    vocab = len(tokens)
    arch = "llama"
    w.add("general.architecture", T_STR, arch)
    w.add("general.name", T_STR, "loom-test-llama-%s-%s" % (args.shape, args.type))
    w.add("general.alignment", T_U32, ALIGN)
    w.add("general.file_type", T_U32, FTYPE[args.type])
    w.add(arch + ".context_length", T_U32, ctx)
    w.add(arch + ".embedding_length", T_U32, dim)
    w.add(arch + ".block_count", T_U32, layers)
    w.add(arch + ".feed_forward_length", T_U32, ffn)
    w.add(arch + ".attention.head_count", T_U32, heads)
    w.add(arch + ".attention.head_count_kv", T_U32, kvh)
    w.add(arch + ".attention.layer_norm_rms_epsilon", T_F32, 1e-5)
    w.add(arch + ".rope.freq_base", T_F32, args.rope_base)
    w.add(arch + ".rope.dimension_count", T_U32, dim // heads)
    if args.rope_linear != 1.0:
        w.add(arch + ".rope.scaling.type", T_STR, "linear")
        w.add(arch + ".rope.scaling.factor", T_F32, args.rope_linear)
    w.add(arch + ".vocab_size", T_U32, vocab)
    w.add("tokenizer.ggml.model", T_STR, "llama")
    w.add_array("tokenizer.ggml.tokens", T_STR, tokens)
    w.add_array("tokenizer.ggml.scores", T_F32, scores)
    w.add_array("tokenizer.ggml.token_type", T_I32, types)
    w.add("tokenizer.ggml.bos_token_id", T_U32, 1)
    w.add("tokenizer.ggml.eos_token_id", T_U32, 2)
    w.add("tokenizer.ggml.unknown_token_id", T_U32, 0)
    w.add("tokenizer.ggml.add_bos_token", T_BOOL, True)
    # TinyLlama / Zephyr's template
    w.add("tokenizer.chat_template", T_STR,
          "{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
          "{{ '<|user|>\\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n"
          "{{ '<|system|>\\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n"
          "{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n{% endif %}\n"
          "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}")
    t = args.type
    hd = dim // heads
    sc = 1.0 / np.sqrt(dim)

    def mat(name, rows, cols, s=sc):
        w.tensor(name, [cols, rows], t, encode_tensor(rand(rng, (rows, cols), s, args.fast), t))

    def vec(name, n, base=1.0, s=0.1):
        v = (base + rand(rng, (n,), s, False)).astype(np.float32)
        w.tensor(name, [n], "F32", v.tobytes())

    mat("token_embd.weight", vocab, dim, 1.0)
    for i in range(layers):
        p = "blk.%d." % i
        vec(p + "attn_norm.weight", dim)
        mat(p + "attn_q.weight", heads * hd, dim)
        mat(p + "attn_k.weight", kvh * hd, dim)
        mat(p + "attn_v.weight", kvh * hd, dim)
        if args.bias:
            vec(p + "attn_q.bias", heads * hd, 0.0, 0.2)
            vec(p + "attn_k.bias", kvh * hd, 0.0, 0.2)
            vec(p + "attn_v.bias", kvh * hd, 0.0, 0.2)
        mat(p + "attn_output.weight", dim, heads * hd)
        vec(p + "ffn_norm.weight", dim)
        mat(p + "ffn_gate.weight", ffn, dim)
        mat(p + "ffn_up.weight", ffn, dim)
        mat(p + "ffn_down.weight", dim, ffn, 1.0 / np.sqrt(ffn))
    vec("output_norm.weight", dim)
    if not args.tied:
        mat("output.weight", vocab, dim, 2.0 / np.sqrt(dim))


def write_bert(args, w, rng):
    dim, layers, heads, ffn, ctx = 64, 2, 4, 128, 128
    tokens, types, merges = gpt2_vocab()
    vocab = len(tokens)
    arch = "bert"
    w.add("general.architecture", T_STR, arch)
    w.add("general.name", T_STR, "loom-test-bert-%s" % args.type)
    w.add("general.alignment", T_U32, ALIGN)
    w.add(arch + ".context_length", T_U32, ctx)
    w.add(arch + ".embedding_length", T_U32, dim)
    w.add(arch + ".block_count", T_U32, layers)
    w.add(arch + ".feed_forward_length", T_U32, ffn)
    w.add(arch + ".attention.head_count", T_U32, heads)
    w.add(arch + ".attention.layer_norm_epsilon", T_F32, 1e-12)
    w.add(arch + ".attention.causal", T_BOOL, False)
    w.add(arch + ".pooling_type", T_U32, 2 if args.pooling == "cls" else 1)
    w.add("tokenizer.ggml.token_type_count", T_U32, 2)  # rows of token_types.weight (llama.cpp requires it)
    w.add("tokenizer.ggml.model", T_STR, "gpt2")
    w.add_array("tokenizer.ggml.tokens", T_STR, tokens)
    w.add_array("tokenizer.ggml.token_type", T_I32, types)
    w.add_array("tokenizer.ggml.merges", T_STR, merges)
    w.add("tokenizer.ggml.bos_token_id", T_U32, 2)
    w.add("tokenizer.ggml.eos_token_id", T_U32, 3)
    w.add("tokenizer.ggml.padding_token_id", T_U32, 0)
    w.add("tokenizer.ggml.unknown_token_id", T_U32, 1)
    w.add("tokenizer.ggml.add_bos_token", T_BOOL, True)
    w.add("tokenizer.ggml.add_eos_token", T_BOOL, True)
    t = args.type
    sc = 1.0 / np.sqrt(dim)

    def mat(name, rows, cols, s=sc):
        w.tensor(name, [cols, rows], t, encode_tensor(rand(rng, (rows, cols), s, False), t))

    def vec(name, n, base=0.0, s=0.1):
        v = (base + rand(rng, (n,), s, False)).astype(np.float32)
        w.tensor(name, [n], "F32", v.tobytes())

    mat("token_embd.weight", vocab, dim, 1.0)
    # small tables stay F32, as in llama.cpp's BERT conversions
    w.tensor("token_types.weight", [dim, 2], "F32", rand(rng, (2, dim), 0.1, False).tobytes())
    w.tensor("position_embd.weight", [dim, ctx], "F32", rand(rng, (ctx, dim), 0.1, False).tobytes())
    vec("token_embd_norm.weight", dim, 1.0)
    vec("token_embd_norm.bias", dim)
    for i in range(layers):
        p = "blk.%d." % i
        for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
            mat(p + n + ".weight", dim, dim)
            vec(p + n + ".bias", dim)
        vec(p + "attn_output_norm.weight", dim, 1.0)
        vec(p + "attn_output_norm.bias", dim)
        mat(p + "ffn_up.weight", ffn, dim)
        vec(p + "ffn_up.bias", ffn)
        mat(p + "ffn_down.weight", dim, ffn, 1.0 / np.sqrt(ffn))
        vec(p + "ffn_down.bias", dim)
        vec(p + "layer_output_norm.weight", dim, 1.0)
        vec(p + "layer_output_norm.bias", dim)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", choices=["llama", "bert"], default="llama")
    ap.add_argument("--type", choices=list(GGML), default="F32")
    ap.add_argument("--shape", choices=list(SHAPES), default="tiny")
    ap.add_argument("--tied", action="store_true", help="no output.weight (tied head)")
    ap.add_argument("--bias", action="store_true", help="q/k/v biases (Qwen2 style)")
    ap.add_argument("--rope-base", type=float, default=10000.0)
    ap.add_argument("--rope-linear", type=float, default=1.0, help="linear RoPE scaling factor")
    ap.add_argument("--pooling", choices=["mean", "cls"], default="mean")
    ap.add_argument("--ctx", type=int, default=0, help="context length (llama; default: the shape's)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--fast", action="store_true", help="uniform random weights (bench models)")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    w = Writer()
    if args.arch == "llama":
        write_llama(args, w, rng)
    else:
        write_bert(args, w, rng)
    w.write(args.out)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, __import__("os").path.dirname(__file__))
    sys.exit(main())
