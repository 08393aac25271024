#!/usr/bin/python3
"""Write a random-weight qwen3moe GGUF (a mixture-of-experts benchmark model).

The tokenizer keys are copied from an existing GGUF (a vocab-only file will do); the
weights are N(0, std) in F16, norms near 1 and the routers in F32, as a converter writes
them. Quantize the result for benchmarks:

  scripts/mkmoe.py --vocab ../shared/tokenizer/ggml-vocab-llama-spm.gguf --out moe-f16.gguf
  llamalite quantize moe-f16.gguf moe-q4_k_m.gguf Q4_K_M

Defaults: dim 1024, 16 layers, 16 heads / 4 KV heads of 64, 64 experts of width 512, 8 used
per token: 1.7B parameters, about 0.3B of them active per token.
"""
import argparse
import struct
import sys

import numpy as np

F32, F16 = 0, 1
U32, F32_KV, STR, ARR = 4, 6, 8, 9
SCALAR = {0: '<B', 1: '<b', 2: '<H', 3: '<h', 4: '<I', 5: '<i', 6: '<f', 7: '<?', 10: '<Q', 11: '<q', 12: '<d'}


def read_tokenizer_kv(path):
    """The (key, type, value) triples of a GGUF's tokenizer.* metadata."""
    f = open(path, 'rb')
    if f.read(4) != b'GGUF':
        sys.exit(f'{path}: not a GGUF file')
    _version, _n_tensors, n_kv = struct.unpack('<IQQ', f.read(20))

    def string():
        n, = struct.unpack('<Q', f.read(8))
        return f.read(n).decode('utf-8', 'surrogatepass')

    def value(t):
        if t == STR:
            return string()
        if t == ARR:
            et, n = struct.unpack('<IQ', f.read(12))
            return (et, [value(et) for _ in range(n)])
        fmt = SCALAR[t]
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

    out = []
    for _ in range(n_kv):
        k = string()
        t, = struct.unpack('<I', f.read(4))
        v = value(t)
        if k.startswith('tokenizer.'):
            out.append((k, t, v))
    return out


class GGUFWriter:
    """Metadata first, then tensors streamed one at a time (the file can exceed memory)."""

    def __init__(self):
        self.kv, self.tensors = [], []  # tensors: (name, ggml dims, type, byte size, make())

    def add(self, key, vtype, v):
        self.kv.append((key, vtype, v))

    def tensor(self, name, shape, gtype, make):
        """shape is numpy's (rows first); make() returns the array when it is written."""
        nbytes = int(np.prod(shape)) * (2 if gtype == F16 else 4)
        self.tensors.append((name, list(reversed(shape)), gtype, nbytes, make))

    def write(self, path, align=32):
        def wstr(f, s):
            b = s.encode('utf-8', 'surrogatepass')
            f.write(struct.pack('<Q', len(b)) + b)

        def wval(f, t, v):
            if t == STR:
                wstr(f, v)
            elif t == ARR:
                et, items = v
                f.write(struct.pack('<IQ', et, len(items)))
                for it in items:
                    wval(f, et, it)
            else:
                f.write(struct.pack(SCALAR[t], v))

        with open(path, 'wb') as f:
            f.write(b'GGUF' + struct.pack('<IQQ', 3, len(self.tensors), len(self.kv)))
            for k, t, v in self.kv:
                wstr(f, k)
                f.write(struct.pack('<I', t))
                wval(f, t, v)
            off = 0
            for name, dims, gtype, nbytes, _ in self.tensors:
                wstr(f, name)
                f.write(struct.pack('<I', len(dims)) + b''.join(struct.pack('<Q', d) for d in dims))
                f.write(struct.pack('<IQ', gtype, off))
                off += (nbytes + align - 1) // align * align
            f.write(b'\0' * ((-f.tell()) % align))
            for name, _, gtype, nbytes, make in self.tensors:
                b = make().astype(np.float16 if gtype == F16 else np.float32).tobytes()
                assert len(b) == nbytes, name
                f.write(b + b'\0' * ((-len(b)) % align))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--vocab', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--dim', type=int, default=1024)
    ap.add_argument('--layers', type=int, default=16)
    ap.add_argument('--heads', type=int, default=16)
    ap.add_argument('--kv-heads', type=int, default=4)
    ap.add_argument('--head-dim', type=int, default=64)
    ap.add_argument('--experts', type=int, default=64)
    ap.add_argument('--experts-used', type=int, default=8)
    ap.add_argument('--expert-ff', type=int, default=512)
    ap.add_argument('--ctx', type=int, default=4096)
    ap.add_argument('--std', type=float, default=0.02)
    ap.add_argument('--seed', type=int, default=1)
    a = ap.parse_args()
    if not 0 < a.experts_used <= a.experts:
        sys.exit('--experts-used must be between 1 and --experts')

    rng = np.random.default_rng(a.seed)
    tok = read_tokenizer_kv(a.vocab)
    n_vocab = len(next(v for k, t, v in tok if k == 'tokenizer.ggml.tokens')[1])
    E, hd, q, kv = a.dim, a.head_dim, a.heads * a.head_dim, a.kv_heads * a.head_dim

    w = GGUFWriter()
    arch = 'qwen3moe'
    w.add('general.architecture', STR, arch)
    w.add('general.name', STR, f'random {arch} {a.experts}x{a.expert_ff}')
    w.add('general.alignment', U32, 32)
    w.add('general.file_type', U32, 1)
    for key, val in [('context_length', a.ctx), ('embedding_length', E), ('block_count', a.layers),
                     ('feed_forward_length', a.expert_ff * a.experts_used), ('attention.head_count', a.heads),
                     ('attention.head_count_kv', a.kv_heads), ('attention.key_length', hd),
                     ('attention.value_length', hd), ('expert_count', a.experts),
                     ('expert_used_count', a.experts_used), ('expert_feed_forward_length', a.expert_ff)]:
        w.add(f'{arch}.{key}', U32, val)
    w.add(f'{arch}.attention.layer_norm_rms_epsilon', F32_KV, 1e-6)
    w.add(f'{arch}.rope.freq_base', F32_KV, 1e6)
    for k, t, v in tok:
        w.add(k, t, v)

    def rnd(*shape, std=a.std):
        return lambda: rng.standard_normal(shape, dtype=np.float32) * std

    def norm(n):
        return lambda: 1.0 + rng.standard_normal(n, dtype=np.float32) * 0.1

    w.tensor('token_embd.weight', (n_vocab, E), F16, rnd(n_vocab, E, std=1.0))
    for i in range(a.layers):
        p = f'blk.{i}.'
        w.tensor(p + 'attn_norm.weight', (E,), F32, norm(E))
        w.tensor(p + 'attn_q.weight', (q, E), F16, rnd(q, E))
        w.tensor(p + 'attn_k.weight', (kv, E), F16, rnd(kv, E))
        w.tensor(p + 'attn_v.weight', (kv, E), F16, rnd(kv, E))
        w.tensor(p + 'attn_q_norm.weight', (hd,), F32, norm(hd))
        w.tensor(p + 'attn_k_norm.weight', (hd,), F32, norm(hd))
        w.tensor(p + 'attn_output.weight', (E, q), F16, rnd(E, q))
        w.tensor(p + 'ffn_norm.weight', (E,), F32, norm(E))
        # The router: experts' scores spread enough that the choice differs from token to token.
        w.tensor(p + 'ffn_gate_inp.weight', (a.experts, E), F32, rnd(a.experts, E, std=0.1))
        w.tensor(p + 'ffn_gate_exps.weight', (a.experts, a.expert_ff, E), F16, rnd(a.experts, a.expert_ff, E))
        w.tensor(p + 'ffn_up_exps.weight', (a.experts, a.expert_ff, E), F16, rnd(a.experts, a.expert_ff, E))
        w.tensor(p + 'ffn_down_exps.weight', (a.experts, E, a.expert_ff), F16, rnd(a.experts, E, a.expert_ff))
    w.tensor('output_norm.weight', (E,), F32, norm(E))
    w.tensor('output.weight', (n_vocab, E), F16, rnd(n_vocab, E))
    w.write(a.out)
    n_exp = 3 * E * a.expert_ff
    total = a.layers * (2 * E * q + 2 * E * kv + a.experts * n_exp) + 2 * n_vocab * E
    active = a.layers * (2 * E * q + 2 * E * kv + a.experts_used * n_exp) + n_vocab * E
    print(f'wrote {a.out}: {total / 1e9:.2f}B parameters, {active / 1e9:.2f}B active per token', file=sys.stderr)


if __name__ == '__main__':
    main()
