#!/usr/bin/env python3
"""Tiny random-weight Hugging Face checkpoints + float64 reference activations.

For each architecture (llama, gpt2, gpt_neox) this writes fixtures/tiny/<arch>/:

* config.json        - as ``PretrainedConfig.save_pretrained`` would write it
* model.safetensors  - float32 weights under the HF parameter names that
                       ``save_pretrained`` uses (metadata {"format": "pt"})
* tokenizer.json     - a small byte-level BPE (shared by all three), trained
                       with the ``tokenizers`` package; ``<|endoftext|>`` is the
                       BOS/EOS special token
* reference.json     - MLP neuron activations for every layer and neuron,
                       computed by an independent float64 numpy forward pass
                       mirroring the HF modeling code (BOS prepended, as
                       TransformerLens does).

The forward passes use the float32-rounded weights (exactly what is stored in
model.safetensors) promoted to float64.

Run from the repository root:  python3 scripts/reference/tiny_models.py
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_ROOT = os.path.join(REPO_ROOT, "fixtures", "tiny")

HIDDEN = 32
INTERMEDIATE = 64
N_LAYER = 3
N_HEAD = 4
HEAD_DIM = HIDDEN // N_HEAD  # 8
MAX_POS = 128
VOCAB_TARGET = 300
SPECIAL = "<|endoftext|>"
TRANSFORMERS_VERSION = "4.46.3"  # only recorded in config.json, as HF does
SEEDS = {"llama": 1, "gpt2": 2, "gpt_neox": 3}

# Corpus for the toy BPE tokenizer.
CORPUS = [
    "The quick brown fox jumps over the lazy dog. The dog did not seem to mind, "
    "and the fox ran off into the forest before the farmer noticed anything.",
    "Once upon a time there was a small village by the sea. The people of the "
    "village were fishermen, and every morning they went out in their boats to "
    "catch fish for the market in the town on the other side of the hill.",
    "Language models read text as a sequence of tokens. Each token is mapped to "
    "a vector, and the vectors pass through many layers of attention and "
    "feed-forward networks before the model predicts the next token.",
    "In the winter the river froze and the children skated on the ice. In the "
    "summer they swam in the same river and caught frogs along the banks.",
    "She said that she would come back in the morning, but the morning came "
    "and went, and there was still no sign of her on the road from the city.",
]

# Texts whose activations are recorded (ids from the tiny tokenizer, BOS added).
# Kept short: every neuron of every layer is stored.
REF_TEXTS = [
    "The fox ran into the village.",
    "Café 👍 42\tok\n\nhi!",
    "the next token",
]


# --------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------

def train_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)  # adds no tokens
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_TARGET,
        special_tokens=[SPECIAL],  # gets id 0
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return tok


# --------------------------------------------------------------------------
# Numerics shared by the forward passes (float64)
# --------------------------------------------------------------------------

def f32(a: np.ndarray) -> np.ndarray:
    """Round to float32 (what is stored) and return as float64 (for compute)."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def layer_norm(x, w, b, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)  # biased, like torch
    return (x - mu) / np.sqrt(var + eps) * w + b


def silu(x):
    return x / (1.0 + np.exp(-x))


def gelu_new(x):
    """HF NewGELUActivation (tanh approximation, GPT-2 'gelu_new')."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_erf(x):
    """Exact GELU (HF 'gelu' = torch.nn.functional.gelu)."""
    from math import erf
    return 0.5 * x * (1.0 + np.vectorize(erf)(x / math.sqrt(2.0)))


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def rope_cos_sin(seq, dim, base):
    """HF rotary embedding: emb = cat(freqs, freqs); returns cos, sin [seq, dim]."""
    inv_freq = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    freqs = np.outer(np.arange(seq, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb), np.sin(emb)


def causal_attention(q, k, v):
    """q: [h, s, d], k/v: [h, s, d] -> [s, h*d]; scale 1/sqrt(d), causal."""
    h, s, d = q.shape
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
    scores = scores + np.triu(np.full((s, s), -np.inf), k=1)
    scores -= scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    return (p @ v).transpose(1, 0, 2).reshape(s, h * d)


# --------------------------------------------------------------------------
# llama  (LlamaForCausalLM)
# --------------------------------------------------------------------------

def llama_config(vocab, bos):
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": bos,
        "eos_token_id": bos,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": MAX_POS,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": N_HEAD,
        "num_hidden_layers": N_LAYER,
        "num_key_value_heads": 2,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "vocab_size": vocab,
    }


def llama_weights(cfg, rs):
    d, m, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    kv = cfg["num_key_value_heads"] * HEAD_DIM
    W = lambda *s: rs.normal(0.0, 0.2, size=s)
    N = lambda n: 1.0 + rs.normal(0.0, 0.1, size=n)
    w = {"model.embed_tokens.weight": W(V, d)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = N(d)
        w[p + "self_attn.q_proj.weight"] = W(d, d)     # [out, in]
        w[p + "self_attn.k_proj.weight"] = W(kv, d)
        w[p + "self_attn.v_proj.weight"] = W(kv, d)
        w[p + "self_attn.o_proj.weight"] = W(d, d)
        w[p + "post_attention_layernorm.weight"] = N(d)
        w[p + "mlp.gate_proj.weight"] = W(m, d)
        w[p + "mlp.up_proj.weight"] = W(m, d)
        w[p + "mlp.down_proj.weight"] = W(d, m)
    w["model.norm.weight"] = N(d)
    w["lm_head.weight"] = W(V, d)
    return w


def llama_forward(cfg, w, ids, record=None):
    """Every layer's neuron activations; with `record` (a list), also appends each
    layer's hook values (see `hooks`)."""
    eps, nh, nkv = cfg["rms_norm_eps"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    s, hd = len(ids), cfg["head_dim"]
    cos, sin = rope_cos_sin(s, hd, cfg["rope_theta"])
    x = w["model.embed_tokens.weight"][ids]
    acts = []
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        resid_pre = x
        a = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (a @ w[p + "self_attn.q_proj.weight"].T).reshape(s, nh, hd).transpose(1, 0, 2)
        k = (a @ w[p + "self_attn.k_proj.weight"].T).reshape(s, nkv, hd).transpose(1, 0, 2)
        v = (a @ w[p + "self_attn.v_proj.weight"].T).reshape(s, nkv, hd).transpose(1, 0, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: query head j uses kv head j // (nh // nkv)
        k = np.repeat(k, nh // nkv, axis=0)
        v = np.repeat(v, nh // nkv, axis=0)
        attn_out = causal_attention(q, k, v) @ w[p + "self_attn.o_proj.weight"].T
        x = x + attn_out
        mm = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        act = silu(mm @ w[p + "mlp.gate_proj.weight"].T) * (mm @ w[p + "mlp.up_proj.weight"].T)
        acts.append(act)
        mlp_out = act @ w[p + "mlp.down_proj.weight"].T
        resid_mid, x = x, x + mlp_out
        if record is not None:
            record.append(hooks(resid_pre, rms_norm(resid_mid, 1.0, eps), attn_out, resid_mid,
                                act, mlp_out, x))
    return acts


# --------------------------------------------------------------------------
# gpt2  (GPT2LMHeadModel; Conv1D weights are [in, out], y = x @ W + b)
# --------------------------------------------------------------------------

def gpt2_config(vocab, bos):
    return {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": bos,
        "embd_pdrop": 0.1,
        "eos_token_id": bos,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_embd": HIDDEN,
        "n_head": N_HEAD,
        "n_inner": INTERMEDIATE,
        "n_layer": N_LAYER,
        "n_positions": MAX_POS,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "torch_dtype": "float32",
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "vocab_size": vocab,
    }


def gpt2_weights(cfg, rs):
    d, m, V = cfg["n_embd"], cfg["n_inner"], cfg["vocab_size"]
    W = lambda *s: rs.normal(0.0, 0.2, size=s)
    B = lambda n: rs.normal(0.0, 0.1, size=n)
    N = lambda n: 1.0 + rs.normal(0.0, 0.1, size=n)
    w = {"transformer.wte.weight": W(V, d), "transformer.wpe.weight": W(cfg["n_positions"], d)}
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        w[p + "ln_1.weight"], w[p + "ln_1.bias"] = N(d), B(d)
        w[p + "attn.c_attn.weight"], w[p + "attn.c_attn.bias"] = W(d, 3 * d), B(3 * d)
        w[p + "attn.c_proj.weight"], w[p + "attn.c_proj.bias"] = W(d, d), B(d)
        w[p + "ln_2.weight"], w[p + "ln_2.bias"] = N(d), B(d)
        w[p + "mlp.c_fc.weight"], w[p + "mlp.c_fc.bias"] = W(d, m), B(m)
        w[p + "mlp.c_proj.weight"], w[p + "mlp.c_proj.bias"] = W(m, d), B(d)
    w["transformer.ln_f.weight"], w["transformer.ln_f.bias"] = N(d), B(d)
    # lm_head.weight is tied to wte and not saved by save_pretrained.
    return w


def gpt2_forward(cfg, w, ids, record=None):
    """As `llama_forward`."""
    eps, nh, d = cfg["layer_norm_epsilon"], cfg["n_head"], cfg["n_embd"]
    s, hd = len(ids), d // nh
    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][np.arange(s)]
    acts = []
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        resid_pre = x
        a = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        qkv = a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = (t.reshape(s, nh, hd).transpose(1, 0, 2) for t in np.split(qkv, 3, axis=-1))
        o = causal_attention(q, k, v) @ w[p + "attn.c_proj.weight"]
        x = x + o + w[p + "attn.c_proj.bias"]
        mm = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        act = gelu_new(mm @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        acts.append(act)
        f = act @ w[p + "mlp.c_proj.weight"]
        resid_mid, x = x, x + f + w[p + "mlp.c_proj.bias"]
        if record is not None:
            record.append(hooks(resid_pre, layer_norm(resid_mid, 1.0, 0.0, eps),
                                o + w[p + "attn.c_proj.bias"], resid_mid, act,
                                f + w[p + "mlp.c_proj.bias"], x))
    return acts


# --------------------------------------------------------------------------
# gpt_neox  (GPTNeoXForCausalLM)
# --------------------------------------------------------------------------

# NOTE: rotary_pct is 0.5 rather than Pythia's 0.25.  With head_dim 8, 0.25
# would rotate only 2 dims -- a single pair, for which rotate_half and the
# interleaved (GPT-J) convention coincide, so the fixture could not catch a
# wrong pairing.  0.5 rotates 4 dims (pairs (0,2),(1,3)) and leaves 4 dims
# un-rotated, which exercises both the pairing and the partial pass-through.
NEOX_ROTARY_PCT = 0.5


def neox_config(vocab, bos):
    return {
        "architectures": ["GPTNeoXForCausalLM"],
        "attention_bias": True,
        "attention_dropout": 0.0,
        "bos_token_id": bos,
        "classifier_dropout": 0.1,
        "eos_token_id": bos,
        "hidden_act": "gelu",
        "hidden_dropout": 0.0,
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTERMEDIATE,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": MAX_POS,
        "model_type": "gpt_neox",
        "num_attention_heads": N_HEAD,
        "num_hidden_layers": N_LAYER,
        "partial_rotary_factor": NEOX_ROTARY_PCT,
        "rope_scaling": None,
        "rope_theta": 10000,
        "rotary_emb_base": 10000,
        "rotary_pct": NEOX_ROTARY_PCT,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "use_parallel_residual": True,
        "vocab_size": vocab,
    }


def neox_weights(cfg, rs):
    d, m, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    W = lambda *s: rs.normal(0.0, 0.2, size=s)
    B = lambda n: rs.normal(0.0, 0.1, size=n)
    N = lambda n: 1.0 + rs.normal(0.0, 0.1, size=n)
    w = {"gpt_neox.embed_in.weight": W(V, d)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"gpt_neox.layers.{i}."
        w[p + "input_layernorm.weight"], w[p + "input_layernorm.bias"] = N(d), B(d)
        w[p + "post_attention_layernorm.weight"], w[p + "post_attention_layernorm.bias"] = N(d), B(d)
        w[p + "attention.query_key_value.weight"] = W(3 * d, d)   # Linear [out, in]
        w[p + "attention.query_key_value.bias"] = B(3 * d)
        w[p + "attention.dense.weight"], w[p + "attention.dense.bias"] = W(d, d), B(d)
        w[p + "mlp.dense_h_to_4h.weight"], w[p + "mlp.dense_h_to_4h.bias"] = W(m, d), B(m)
        w[p + "mlp.dense_4h_to_h.weight"], w[p + "mlp.dense_4h_to_h.bias"] = W(d, m), B(d)
    w["gpt_neox.final_layer_norm.weight"], w["gpt_neox.final_layer_norm.bias"] = N(d), B(d)
    w["embed_out.weight"] = W(V, d)
    return w


def neox_forward(cfg, w, ids, record=None):
    """As `llama_forward`; the parallel residual has no resid_mid (recorded as None)
    and the MLP's norm reads the block input."""
    eps, nh, d = cfg["layer_norm_eps"], cfg["num_attention_heads"], cfg["hidden_size"]
    s, hd = len(ids), d // nh
    rot = int(hd * cfg["rotary_pct"])
    cos, sin = rope_cos_sin(s, rot, cfg["rotary_emb_base"])
    x = w["gpt_neox.embed_in.weight"][ids]
    acts = []
    for i in range(cfg["num_hidden_layers"]):
        p = f"gpt_neox.layers.{i}."
        a = layer_norm(x, w[p + "input_layernorm.weight"], w[p + "input_layernorm.bias"], eps)
        qkv = a @ w[p + "attention.query_key_value.weight"].T + w[p + "attention.query_key_value.bias"]
        # HF: view(seq, heads, 3*head_dim) -> per-head [q | k | v] chunks.
        qkv = qkv.reshape(s, nh, 3 * hd).transpose(1, 0, 2)     # [h, s, 3*hd]
        q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]
        # Partial rotary: rotate_half over the first `rot` dims only.
        q = np.concatenate([q[..., :rot] * cos + rotate_half(q[..., :rot]) * sin, q[..., rot:]], axis=-1)
        k = np.concatenate([k[..., :rot] * cos + rotate_half(k[..., :rot]) * sin, k[..., rot:]], axis=-1)
        attn_out = causal_attention(q, k, v) @ w[p + "attention.dense.weight"].T + w[p + "attention.dense.bias"]
        mm = layer_norm(x, w[p + "post_attention_layernorm.weight"], w[p + "post_attention_layernorm.bias"], eps)
        act = gelu_erf(mm @ w[p + "mlp.dense_h_to_4h.weight"].T + w[p + "mlp.dense_h_to_4h.bias"])
        acts.append(act)
        mlp_out = act @ w[p + "mlp.dense_4h_to_h.weight"].T + w[p + "mlp.dense_4h_to_h.bias"]
        assert cfg["use_parallel_residual"]
        resid_pre = x
        x = x + attn_out + mlp_out     # parallel residual
        if record is not None:
            record.append(hooks(resid_pre, layer_norm(resid_pre, 1.0, 0.0, eps), attn_out, None,
                                act, mlp_out, x))
    return acts


def hooks(resid_pre, ln2_normalized, attn_out, resid_mid, mlp_post, mlp_out, resid_post):
    """One block's values at the TransformerLens hook points, by hook name.

    ``ln2.hook_normalized`` is the MLP norm's input normalized, before the norm's
    learned scale (and bias): ``x / rms(x)`` or ``(x - mean) / std``."""
    return {"hook_resid_pre": resid_pre, "ln2.hook_normalized": ln2_normalized,
            "hook_attn_out": attn_out, "hook_resid_mid": resid_mid, "mlp.hook_post": mlp_post,
            "hook_mlp_out": mlp_out, "hook_resid_post": resid_post}


ARCHS = {
    "llama": (llama_config, llama_weights, llama_forward),
    "gpt2": (gpt2_config, gpt2_weights, gpt2_forward),
    "gpt_neox": (neox_config, neox_weights, neox_forward),
}


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def sig7(x: float) -> float:
    return float(f"{x:.7g}")


def text_entry(text, ids, acts):
    """One text of a reference.json: its ids and every neuron of every layer."""
    return {
        "text": text,
        "ids": ids,
        "layers": [{"layer": li, "activations": [[sig7(v) for v in row] for row in a]}
                   for li, a in enumerate(acts)],
    }


def write_reference(out_dir, ref, label):
    """Writes out_dir/reference.json and prints the folder's file sizes."""
    with open(os.path.join(out_dir, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    sizes = {n: os.path.getsize(os.path.join(out_dir, n)) for n in sorted(os.listdir(out_dir))}
    print(f"{label}: {sum(sizes.values())} bytes {sizes}")


def main():
    tok = train_tokenizer()
    vocab = tok.get_vocab_size()
    bos = tok.token_to_id(SPECIAL)
    print(f"tokenizer: vocab {vocab}, {SPECIAL} id {bos}")
    encoded = [(t, tok.encode(t).ids) for t in REF_TEXTS]
    for t, ids in encoded:
        print(f"  {t!r} -> {len(ids)} ids {ids}")
        assert tok.decode(ids) == t, "byte-level BPE must round-trip"

    for arch, (make_cfg, make_w, forward) in ARCHS.items():
        out_dir = os.path.join(OUT_ROOT, arch)
        os.makedirs(out_dir, exist_ok=True)
        cfg = make_cfg(vocab, bos)
        rs = np.random.RandomState(SEEDS[arch])
        w32 = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in make_w(cfg, rs).items()}
        w64 = {k: v.astype(np.float64) for k, v in w32.items()}

        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        save_file(w32, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
        tok.save(os.path.join(out_dir, "tokenizer.json"))

        ref = {"bos_id": bos, "texts": []}
        for text, ids in encoded:
            full = [bos] + ids
            acts = forward(cfg, w64, np.array(full))
            ref["texts"].append(text_entry(text, full, acts))
        write_reference(out_dir, ref, arch)


if __name__ == "__main__":
    main()
