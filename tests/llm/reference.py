#!/usr/bin/env python3
"""reference.py — an independent NumPy reference for Loom's LLM code.

It reads GGUF files with its own parser, dequantises every tensor to float64
and runs the `llama` and `bert` forwards in plain NumPy, plus both tokenizers
(SentencePiece-style BPE and GPT-2 byte-level BPE). Tests compare Loom's C
output against it:

  reference.py logits  MODEL IDS...      logits of the last position (one per line)
  reference.py greedy  MODEL N IDS...    N greedy tokens after the prompt
  reference.py embed   MODEL IDS...      pooled, L2-normalised embedding
  reference.py tokenize MODEL TEXT       token ids
  reference.py compare-logits MODEL BIN TOL IDS...  exit 1 unless BIN (float32
        logits of every prompt position, row-major) is within TOL (max abs
        difference / max abs reference logit) and has the same argmax everywhere
  reference.py compare-embed MODEL TXT TOL IDS...   same for an embedding

Matmuls with Q8_0 / Q4_0 weights quantise the activation vector to Q8_0 first
(fp16 scale, round-to-nearest), which is how ggml and Loom compute those dot
products; the reference does the same arithmetic in float64.
"""
import struct
import sys

import numpy as np

GG_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 8: "Q8_0", 30: "BF16"}


class Gguf:
    def __init__(self, path):
        self.buf = open(path, "rb").read()
        self.pos = 0
        magic, ver, nt, nkv = self.unpack("<IIQQ")
        assert magic == 0x46554747 and ver == 3, "not a GGUF v3 file"
        self.kv = {}
        for _ in range(nkv):
            k = self.string()
            (t,) = self.unpack("<I")
            self.kv[k] = self.value(t)
        infos = []
        for _ in range(nt):
            name = self.string()
            (nd,) = self.unpack("<I")
            ne = list(self.unpack("<%dQ" % nd))
            t, off = self.unpack("<IQ")
            infos.append((name, ne, GG_TYPES[t], off))
        align = self.kv.get("general.alignment", 32)
        base = (self.pos + align - 1) // align * align
        self.t = {}
        for name, ne, t, off in infos:
            self.t[name] = (ne, t, base + off)

    def unpack(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        (n,) = self.unpack("<Q")
        s = self.buf[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def value(self, t):
        fmts = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                10: "<Q", 11: "<q", 12: "<d"}
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.unpack("<IQ")
            return [self.value(et) for _ in range(n)]
        return self.unpack(fmts[t])[0]

    def typ(self, name):
        return self.t[name][1]

    def get(self, name):
        """Dequantised tensor as float64, shape (ne1, ne0) for matrices."""
        ne, t, off = self.t[name]
        n = int(np.prod(ne))
        b = self.buf
        if t == "F32":
            a = np.frombuffer(b, np.float32, n, off).astype(np.float64)
        elif t == "F16":
            a = np.frombuffer(b, np.float16, n, off).astype(np.float64)
        elif t == "BF16":
            u = np.frombuffer(b, np.uint16, n, off).astype(np.uint32) << 16
            a = u.view(np.float32).astype(np.float64)
        elif t == "Q8_0":
            blk = np.frombuffer(b, np.uint8, n // 32 * 34, off).reshape(-1, 34)
            d = blk[:, :2].copy().view(np.float16).astype(np.float64)
            q = blk[:, 2:].copy().view(np.int8).astype(np.float64)
            a = (q * d).reshape(-1)
        elif t == "Q4_0":
            blk = np.frombuffer(b, np.uint8, n // 32 * 18, off).reshape(-1, 18)
            d = blk[:, :2].copy().view(np.float16).astype(np.float64)
            qs = blk[:, 2:]
            q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float64) - 8
            a = (q * d).reshape(-1)
        return a.reshape(list(reversed(ne))) if len(ne) > 1 else a


def q8_act(x):
    """Activation vector -> Q8_0 -> float64 (what ggml/Loom dot products see)."""
    x = np.asarray(x, dtype=np.float32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    d = (amax / np.float32(127.0)).astype(np.float32)
    idv = np.where(d > 0, np.float32(1.0) / np.where(d > 0, d, 1), 0).astype(np.float32)
    q = np.round(x * idv[:, None])  # ties away from zero differ only at exact .5
    dh = d.astype(np.float16).astype(np.float64)
    return (q * dh[:, None]).reshape(-1)


class Model:
    def __init__(self, path):
        self.g = Gguf(path)
        self.arch = self.g.kv["general.architecture"]

    def hp(self, key, default=None):
        return self.g.kv.get(self.arch + "." + key, default)

    def mv(self, name, x):
        """W x for a weight stored as (out, in); x is 1-D."""
        W = self.g.get(name)
        if self.g.typ(name) in ("Q8_0", "Q4_0"):
            x = q8_act(x)
        y = W @ x
        b = name.replace(".weight", ".bias")
        if b in self.g.t:
            y = y + self.g.get(b)
        return y

    # ------------------------------------------------------------ llama ----
    def llama_logits(self, ids):
        """Logits of every position, shape (len(ids), vocab)."""
        g = self.g
        dim = self.hp("embedding_length")
        L = self.hp("block_count")
        H = self.hp("attention.head_count")
        KV = self.hp("attention.head_count_kv", H)
        eps = self.hp("attention.layer_norm_rms_epsilon")
        base = self.hp("rope.freq_base", 10000.0)
        hd = dim // H
        nrot = self.hp("rope.dimension_count", hd)
        scale = 1.0
        if self.hp("rope.scaling.type", "none") == "linear":
            scale = 1.0 / self.hp("rope.scaling.factor", 1.0)
        emb = g.get("token_embd.weight")
        out_name = "output.weight" if "output.weight" in g.t else "token_embd.weight"

        def rms(x, w):
            return x / np.sqrt(np.mean(x * x) + eps) * w

        def rope(v, pos):
            v = v.copy()
            for i in range(0, nrot, 2):
                th = pos * scale * base ** (-i / nrot)
                c, s = np.cos(th), np.sin(th)
                a, b = v[i], v[i + 1]
                v[i], v[i + 1] = a * c - b * s, a * s + b * c
            return v

        kc = [[] for _ in range(L)]
        vc = [[] for _ in range(L)]
        out = []
        for pos, t in enumerate(ids):
            x = emb[t].copy()
            for l in range(L):
                p = "blk.%d." % l
                h = rms(x, g.get(p + "attn_norm.weight"))
                q = self.mv(p + "attn_q.weight", h).reshape(H, hd)
                k = self.mv(p + "attn_k.weight", h).reshape(KV, hd)
                v = self.mv(p + "attn_v.weight", h).reshape(KV, hd)
                q = np.stack([rope(q[i], pos) for i in range(H)])
                k = np.stack([rope(k[i], pos) for i in range(KV)])
                kc[l].append(k)
                vc[l].append(v)
                K = np.stack(kc[l])  # (T, KV, hd)
                V = np.stack(vc[l])
                att = np.zeros((H, hd))
                for i in range(H):
                    j = i // (H // KV)
                    s = K[:, j, :] @ q[i] / np.sqrt(hd)
                    s = np.exp(s - s.max())
                    s /= s.sum()
                    att[i] = s @ V[:, j, :]
                x = x + self.mv(p + "attn_output.weight", att.reshape(-1))
                h = rms(x, g.get(p + "ffn_norm.weight"))
                a = self.mv(p + "ffn_gate.weight", h)
                u = self.mv(p + "ffn_up.weight", h)
                x = x + self.mv(p + "ffn_down.weight", a / (1 + np.exp(-a)) * u)
            h = rms(x, g.get("output_norm.weight"))
            out.append(self.mv(out_name, h))
        return np.array(out)

    # ------------------------------------------------------------- bert ----
    def bert_embed(self, ids):
        g = self.g
        dim = self.hp("embedding_length")
        L = self.hp("block_count")
        H = self.hp("attention.head_count")
        eps = self.hp("attention.layer_norm_epsilon")
        hd = dim // H
        T = len(ids)

        def ln(x, name):
            m = x.mean(axis=-1, keepdims=True)
            v = ((x - m) ** 2).mean(axis=-1, keepdims=True)
            return (x - m) / np.sqrt(v + eps) * g.get(name + ".weight") + g.get(name + ".bias")

        def mm(name, X):
            return np.stack([self.mv(name, X[i]) for i in range(X.shape[0])])

        def gelu(x):
            return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))

        x = g.get("token_embd.weight")[ids] + g.get("token_types.weight")[0] + \
            g.get("position_embd.weight")[:T]
        x = ln(x, "token_embd_norm")
        for l in range(L):
            p = "blk.%d." % l
            q = mm(p + "attn_q.weight", x).reshape(T, H, hd)
            k = mm(p + "attn_k.weight", x).reshape(T, H, hd)
            v = mm(p + "attn_v.weight", x).reshape(T, H, hd)
            att = np.zeros((T, H, hd))
            for h in range(H):
                s = q[:, h, :] @ k[:, h, :].T / np.sqrt(hd)
                s = np.exp(s - s.max(axis=1, keepdims=True))
                s /= s.sum(axis=1, keepdims=True)
                att[:, h, :] = s @ v[:, h, :]
            x = ln(x + mm(p + "attn_output.weight", att.reshape(T, dim)), p + "attn_output_norm")
            f = mm(p + "ffn_down.weight", gelu(mm(p + "ffn_up.weight", x)))
            x = ln(x + f, p + "layer_output_norm")
        pooled = x[0] if self.hp("pooling_type", 1) == 2 else x.mean(axis=0)
        return pooled / np.linalg.norm(pooled)


# ---------------------------------------------------------- tokenizers ----
def _is_l(c):
    return (65 <= c <= 90) or (97 <= c <= 122) or c >= 128


def _is_n(c):
    return 48 <= c <= 57


def _is_s(c):
    return c in (32, 9, 10, 11, 12, 13)


def gpt2_split(text):
    """GPT-2 pre-tokenizer on UTF-8 bytes (returns bytes pieces); letters are ASCII letters and all
    non-ASCII bytes (the C tokenizer uses the same classes)."""
    b = text.encode("utf-8") if isinstance(text, str) else text
    out, i, n = [], 0, len(b)
    while i < n:
        c = b[i]
        if c == 39:  # apostrophe contractions
            m = None
            for suf in (b"s", b"t", b"re", b"ve", b"m", b"ll", b"d"):
                if b[i + 1:i + 1 + len(suf)] == suf:
                    m = 1 + len(suf)
                    break
            if m:
                out.append(b[i:i + m])
                i += m
                continue
        j = i + 1 if (c == 32 and i + 1 < n) else i
        cls = None
        if j < n and _is_l(b[j]):
            cls = _is_l
        elif j < n and _is_n(b[j]):
            cls = _is_n
        elif j < n and not _is_s(b[j]):
            cls = lambda x: not (_is_s(x) or _is_l(x) or _is_n(x))
        if cls is not None:
            k = j
            while k < n and cls(b[k]):
                k += 1
            out.append(b[i:k])
            i = k
            continue
        k = i
        while k < n and _is_s(b[k]):
            k += 1
        run = k - i
        if k == n or run == 1:
            out.append(b[i:k] if k == n else b[i:i + 1])
            i = k if k == n else i + 1
        else:
            out.append(b[i:k - 1])
            i = k - 1
    return out


def _split_special(text, specials):
    """Splits text into (is_special, piece) around the longest special match."""
    parts, i, start = [], 0, 0
    while i < len(text):
        best = None
        for s in specials:
            if s and text.startswith(s, i) and (best is None or len(s) > len(best)):
                best = s
        if best:
            if i > start:
                parts.append((False, text[start:i], start))
            parts.append((True, best, i))
            i += len(best)
            start = i
        else:
            i += 1
    if start < len(text):
        parts.append((False, text[start:], start))
    return parts


def tokenize(model, text):
    kv = model.g.kv
    toks = kv["tokenizer.ggml.tokens"]
    types = kv.get("tokenizer.ggml.token_type", [1] * len(toks))
    tid = {t: i for i, t in enumerate(toks)}
    specials = [t for t, ty in zip(toks, types) if ty in (3, 4)]
    kind = kv["tokenizer.ggml.model"]
    ids = []
    if kv.get("tokenizer.ggml.add_bos_token", kind == "llama"):
        ids.append(kv["tokenizer.ggml.bos_token_id"])
    for special, piece, at in _split_special(text, specials):
        if special:
            ids.append(tid[piece])
        elif kind == "llama":
            ids += _spm(piece if at > 0 else " " + piece, toks, tid, kv["tokenizer.ggml.scores"])
        else:
            ids += _gpt2(piece, tid, kv["tokenizer.ggml.merges"])
    if kv.get("tokenizer.ggml.add_eos_token", False):
        ids.append(kv["tokenizer.ggml.eos_token_id"])
    return ids


def _spm(text, toks, tid, scores):
    syms = list(text.replace(" ", "\u2581"))
    while True:
        best, bi = None, -1
        for i in range(len(syms) - 1):
            t = syms[i] + syms[i + 1]
            if t in tid and (best is None or scores[tid[t]] > best):
                best, bi = scores[tid[t]], i
        if bi < 0:
            break
        syms[bi:bi + 2] = [syms[bi] + syms[bi + 1]]
    out = []
    for s in syms:
        if s in tid:
            out.append(tid[s])
        else:
            out += [tid["<0x%02X>" % b] for b in s.encode("utf-8")]
    return out


def _gpt2(text, tid, merges):
    import gen_gguf
    b2u = gen_gguf.bytes_to_unicode()
    rank = {tuple(m.split(" ")): i for i, m in enumerate(merges)}
    out = []
    for piece in gpt2_split(text):
        syms = [b2u[b] for b in piece]
        while len(syms) > 1:
            best, bi = None, -1
            for i in range(len(syms) - 1):
                r = rank.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if bi < 0:
                break
            syms[bi:bi + 2] = [syms[bi] + syms[bi + 1]]
        out += [tid[s] for s in syms]
    return out


# ----------------------------------------------------------------- main ----
def main(argv):
    if len(argv) < 3 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) > 1 else 2
    cmd, m = argv[1], Model(argv[2])
    if cmd.startswith("compare") and len(argv) < 6:
        print("usage: reference.py %s MODEL FILE TOL IDS..." % cmd, file=sys.stderr)
        return 2
    np.set_printoptions(precision=8, suppress=True)
    if cmd == "logits":
        for v in m.llama_logits([int(a) for a in argv[3:]])[-1]:
            print("%.8g" % v)
    elif cmd == "greedy":
        n, ids = int(argv[3]), [int(a) for a in argv[4:]]
        out = []
        for _ in range(n):
            nxt = int(np.argmax(m.llama_logits(ids + out)[-1]))
            out.append(nxt)
        print(" ".join(map(str, out)))
    elif cmd == "embed":
        for v in m.bert_embed([int(a) for a in argv[3:]]):
            print("%.8g" % v)
    elif cmd == "tokenize":
        print(" ".join(map(str, tokenize(m, argv[3]))))
    elif cmd == "compare-logits":
        # FILE may list several comma-separated logits files (one per SIMD
        # level): the reference forward runs once, one line per file, each
        # starting "FILE: " when FILE is a list.
        tol = float(argv[4])
        ids = [int(a) for a in argv[5:]]
        ref = m.llama_logits(ids)
        files = [f for f in argv[3].split(",") if f]
        rc = 0
        for f in files:
            tag = f + ": " if "," in argv[3] else ""
            got = np.fromfile(f, dtype=np.float32).astype(np.float64)
            if got.size != ref.size:
                print("%sFAIL: %d logits, expected %d" % (tag, got.size, ref.size))
                rc = 1
                continue
            got = got.reshape(ref.shape)
            err = np.abs(got - ref).max() / np.abs(ref).max()
            same = (got.argmax(axis=1) == ref.argmax(axis=1)).all()
            print("%smax relative error %.3g (tolerance %g), argmax per position %s" %
                  (tag, err, tol, "identical" if same else "DIFFERENT"))
            rc |= 0 if err <= tol and same else 1
        return rc
    elif cmd == "compare-embed":
        tol = float(argv[4])
        ref = m.bert_embed([int(a) for a in argv[5:]])
        got = np.loadtxt(argv[3])
        err = np.abs(got - ref).max() / np.abs(ref).max()
        print("max relative error %.3g (tolerance %g), norm %.6f" % (err, tol, np.linalg.norm(got)))
        return 0 if err <= tol and abs(np.linalg.norm(got) - 1) < 1e-4 else 1
    else:
        print("reference.py: unknown command %r" % cmd, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.path.insert(0, __import__("os").path.dirname(__file__))
    sys.exit(main(sys.argv))
