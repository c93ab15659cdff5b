#!/usr/bin/env python3
"""A tiny Llama GGUF whose tensors use many GGUF weight types + float64 reference.

Writes fixtures/tiny/gguf_types/:

* model.gguf     - the model of ``tiny_gguf.py`` (SentencePiece tokenizer, Llama 3.1
                   RoPE divisors, grouped KV heads, head size 16) made wide enough for
                   K-quant blocks (256 weights a block: hidden 256, 16 heads, MLP 256,
                   2 layers), every weight matrix in another type: F16 embedding, BF16
                   LM head, and across the two blocks Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q4_0,
                   Q4_1, Q5_0, Q5_1, Q8_0, F16 and BF16 (``TYPES`` below).
* reference.json - token ids from the ``sentencepiece`` library (BOS prepended) and
                   every layer's MLP neuron activations from the float64 numpy forward
                   pass of ``tiny_gguf.py``, on weights dequantized by the ``gguf``
                   package (``gguf.quants.dequantize``), not by the Rust code.

The ``gguf`` package cannot quantize to the K-quant types, so their blocks are random
bytes with chosen scales (every bit pattern is a valid block); the other types are
quantized from normal weights with ``gguf.quants.quantize``.

Run from the repository root:  python3 scripts/reference/tiny_gguf_types.py
"""

from __future__ import annotations

import os

import gguf
import numpy as np

import tiny_gguf as base
from tiny_models import text_entry, write_reference

OUT = os.path.join(base.REPO_ROOT, "fixtures", "tiny", "gguf_types")

# The base script's forward pass and writer read these module constants: widen them.
base.HIDDEN = 256
base.N_HEAD = 16
base.INTERMEDIATE = 256
base.N_LAYER = 2

Q = gguf.GGMLQuantizationType
# Per block of the two layers: the type of each weight matrix.
TYPES = [
    {"attn_q": Q.Q4_K, "attn_k": Q.Q5_K, "attn_v": Q.Q6_K, "attn_output": Q.Q2_K,
     "ffn_gate": Q.Q3_K, "ffn_up": Q.Q4_0, "ffn_down": Q.Q5_1},
    {"attn_q": Q.Q5_0, "attn_k": Q.Q4_1, "attn_v": Q.Q8_0, "attn_output": Q.F16,
     "ffn_gate": Q.BF16, "ffn_up": Q.Q6_K, "ffn_down": Q.Q4_K},
]

# K-quant blocks: (bytes, byte offsets of the f16 super-block scales, their range),
# ranges chosen so that weights come out around 0.1-0.3 like the others.
K_BLOCKS = {
    Q.Q2_K: (84, [80, 82], (0.01, 0.03)),
    Q.Q3_K: (110, [108], (0.003, 0.01)),
    Q.Q4_K: (144, [0, 2], (0.0005, 0.0015)),
    Q.Q5_K: (176, [0, 2], (0.0002, 0.0008)),
    Q.Q6_K: (210, [208], (0.0001, 0.0003)),
}


def stored_and_back(w, qtype, rs):
    """The bytes (or floats) to store for `w` as `qtype`, and their float64 reading."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    if qtype in K_BLOCKS:
        size, offsets, (lo, hi) = K_BLOCKS[qtype]
        blocks = w.size // 256
        raw = rs.randint(0, 256, size=(blocks, size)).astype(np.uint8)
        for o in offsets:
            scale = rs.uniform(lo, hi, size=blocks).astype(np.float16)
            raw[:, o:o + 2] = scale.view(np.uint8).reshape(blocks, 2)
        data = raw.reshape(w.shape[0], -1)
    else:
        data = gguf.quants.quantize(w, qtype)
    back = gguf.quants.dequantize(data, qtype).reshape(w.shape).astype(np.float64)
    assert np.isfinite(back).all()
    return data, back


def main():
    os.makedirs(OUT, exist_ok=True)
    sp = base.train_spm()
    n_vocab = sp.GetPieceSize()
    rs = np.random.RandomState(11)
    W = lambda *s: rs.normal(0.0, 0.2, size=s)
    N = lambda n: 1.0 + rs.normal(0.0, 0.1, size=n)
    F32 = Q.F32

    tensors = {}
    hf = {"blocks": []}
    data, hf["embed"] = stored_and_back(W(n_vocab, base.HIDDEN), Q.F16, rs)
    tensors["token_embd.weight"] = (data, Q.F16)
    tensors["rope_freqs.weight"] = (base.llama3_rope_factors(), F32)
    q_out, kv_out = base.N_HEAD * base.HEAD_DIM, base.N_KV * base.HEAD_DIM
    for i, types in enumerate(TYPES):
        blk = {}
        p = f"blk.{i}."
        for name, hf_name, shape, heads in [
            ("attn_q", "q", (q_out, base.HIDDEN), base.N_HEAD),
            ("attn_k", "k", (kv_out, base.HIDDEN), base.N_KV),
            ("attn_v", "v", (kv_out, base.HIDDEN), None),
            ("attn_output", "o", (base.HIDDEN, q_out), None),
            ("ffn_gate", "gate", (base.INTERMEDIATE, base.HIDDEN), None),
            ("ffn_up", "up", (base.INTERMEDIATE, base.HIDDEN), None),
            ("ffn_down", "down", (base.HIDDEN, base.INTERMEDIATE), None),
        ]:
            w_hf = np.asarray(W(*shape), dtype=np.float32)
            stored = base.permute(w_hf, heads) if heads else w_hf
            data, back = stored_and_back(stored, types[name], rs)
            tensors[p + name + ".weight"] = (data, types[name])
            # Un-permute what is stored, as the reference works in HF layout.
            if heads:
                back = (back.reshape(heads, base.HEAD_DIM // 2, 2, base.HIDDEN)
                        .swapaxes(1, 2).reshape(shape))
            blk[hf_name] = back
        for name in ["attn_norm", "ffn_norm"]:
            v = np.asarray(N(base.HIDDEN), dtype=np.float32)
            tensors[p + name + ".weight"] = (v, F32)
            blk[name] = v.astype(np.float64)
        hf["blocks"].append(blk)
    tensors["output_norm.weight"] = (np.asarray(N(base.HIDDEN), dtype=np.float32), F32)
    data, _ = stored_and_back(W(n_vocab, base.HIDDEN), Q.BF16, rs)
    tensors["output.weight"] = (data, Q.BF16)
    base.write(os.path.join(OUT, "model.gguf"), sp, tensors, {})

    inv_freq = base.llama3_inv_freq()
    ref = {"bos_id": 1, "texts": []}
    for text in base.REF_TEXTS[:3]:
        ids = [1] + sp.encode(text)
        acts = base.forward(hf, np.array(ids), inv_freq)
        ref["texts"].append(text_entry(text, ids, acts))
    write_reference(OUT, ref, "gguf_types")


if __name__ == "__main__":
    main()
