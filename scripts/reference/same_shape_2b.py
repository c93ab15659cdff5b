#!/usr/bin/env python3
"""A random-weight model of Gemma-2-2B's shape, in bfloat16, for memory measurements.

Writes a Hugging Face folder (default /tmp/gemma2-2b-shape) with Gemma-2-2B's config
(hidden 2304, MLP 9216, 26 layers, 8 heads of 256, 4 KV heads, vocabulary 256000:
2.61 billion parameters, 5.2 GB as bf16) in three safetensors shards with
model.safetensors.index.json, and the tiny Gemma-style tokenizer.json of
fixtures/tiny/gemma (its ids are valid in the larger vocabulary). Tensors are streamed
to disk, so the script itself needs little memory.

    python3 scripts/reference/same_shape_2b.py [OUT_DIR]
    /usr/bin/time -v target/release/n2g-index activations --model OUT_DIR \\
        --layer 25 --text "..." --json > /dev/null

Needs numpy only.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys

import numpy as np

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

CONFIG = {
    "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2",
    "attention_bias": False, "attn_logit_softcapping": 50.0, "bos_token_id": 2,
    "eos_token_id": 1, "pad_token_id": 0, "final_logit_softcapping": 30.0,
    "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2304,
    "intermediate_size": 9216, "max_position_embeddings": 8192,
    "num_attention_heads": 8, "num_hidden_layers": 26, "num_key_value_heads": 4,
    "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
    "sliding_window": 4096, "torch_dtype": "bfloat16", "vocab_size": 256000,
}


def shapes(c):
    d, m, hd = c["hidden_size"], c["intermediate_size"], c["head_dim"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    out = {"model.embed_tokens.weight": (c["vocab_size"], d), "model.norm.weight": (d,)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        for n in ("input_layernorm", "post_attention_layernorm",
                  "pre_feedforward_layernorm", "post_feedforward_layernorm"):
            out[p + n + ".weight"] = (d,)
        out[p + "self_attn.q_proj.weight"] = (q, d)
        out[p + "self_attn.k_proj.weight"] = (kv, d)
        out[p + "self_attn.v_proj.weight"] = (kv, d)
        out[p + "self_attn.o_proj.weight"] = (d, q)
        out[p + "mlp.gate_proj.weight"] = (m, d)
        out[p + "mlp.up_proj.weight"] = (m, d)
        out[p + "mlp.down_proj.weight"] = (d, m)
    return out


def random_bf16(shape, rng, scale):
    """Normal-ish values as bfloat16 bits (truncated float32), in row chunks."""
    rows = shape[0]
    cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    step = max(1, (1 << 24) // cols)
    for start in range(0, rows, step):
        n = min(step, rows - start)
        x = rng.standard_normal((n, cols), dtype=np.float32) * np.float32(scale)
        yield (x.view(np.uint32) >> 16).astype(np.uint16).tobytes()


def write_shard(path, names, all_shapes, rng):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for n in names:
        size = int(np.prod(all_shapes[n])) * 2
        header[n] = {"dtype": "BF16", "shape": list(all_shapes[n]),
                     "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head)
        for n in names:
            scale = 0.3 if n.endswith("norm.weight") else 0.02
            for chunk in random_bf16(all_shapes[n], rng, scale):
                f.write(chunk)
    return offset


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/gemma2-2b-shape"
    os.makedirs(out, exist_ok=True)
    all_shapes = shapes(CONFIG)
    names = sorted(all_shapes)
    params = sum(int(np.prod(s)) for s in all_shapes.values())
    rng = np.random.default_rng(0)
    files = [f"model-{i + 1:05d}-of-00003.safetensors" for i in range(3)]
    weight_map, total = {}, 0
    for i, fname in enumerate(files):
        part = names[i::3]
        total += write_shard(os.path.join(out, fname), part, all_shapes, rng)
        weight_map.update({n: fname for n in part})
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    shutil.copy(os.path.join(REPO_ROOT, "fixtures", "tiny", "gemma", "tokenizer.json"), out)
    print(f"{out}: {params / 1e9:.3f} billion parameters, {total / 1e9:.2f} GB as bf16")


if __name__ == "__main__":
    main()
