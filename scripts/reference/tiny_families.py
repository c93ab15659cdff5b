#!/usr/bin/env python3
"""Tiny random-weight Gemma, Gemma 2, Qwen 2, Qwen 3 and Mistral checkpoints +
float64 reference activations.

For each family this writes fixtures/tiny/<family>/ as a Hugging Face folder
(config.json, safetensors weights, tokenizer.json) and a reference.json with
every neuron of every layer from an independent float64 numpy forward pass that
mirrors the Hugging Face modeling code. The shapes are chosen so that the
family's particulars show:

* head_dim 16 with hidden 32 and 4 heads (not hidden / heads), 2 KV heads;
* norm weights far from 0 and 1 (so Gemma's ``1 + w`` differs from ``w``);
* a sliding window of 4 tokens, shorter than the texts (Gemma 2 on even layers,
  Qwen 2 from ``max_window_layers`` on, Mistral on every layer);
* soft-capping limits small enough to bite (Gemma 2);
* q/k/v biases (Qwen 2), per-head q/k RMSNorm (Qwen 3);
* weights stored as bfloat16 (Gemma 2, sharded over two files with
  model.safetensors.index.json, and Qwen 3), float16 (Qwen 2) and float32
  (Gemma, Mistral); the reference reads the stored values.

Also the two tokenizers (fixtures/tiny/tokenizers/): a Gemma-style
SentencePiece-like BPE (spaces as U+2581, no pre-tokenizer, byte fallback) and a
Qwen-style byte-level BPE (NFC, Qwen 2's split pattern), with their ids for
tricky strings as the ``tokenizers`` library gives them.

Run from the repository root:  python3 scripts/reference/tiny_families.py
"""

from __future__ import annotations

import json
import math
import os
import struct

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers import processors, trainers

from tiny_models import CORPUS, gelu_new, hooks, rotate_half, sig7, text_entry, write_reference

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_ROOT = os.path.join(REPO_ROOT, "fixtures", "tiny")

HIDDEN = 32
N_HEAD = 4
N_KV = 2
HEAD_DIM = 16  # not HIDDEN // N_HEAD
INTERMEDIATE = 64
N_LAYER = 3
WINDOW = 4
VOCAB_TARGET = 400
TRANSFORMERS_VERSION = "4.57.1"  # only recorded in config.json, as HF does

REF_TEXTS = [
    "The fox ran into the village, and the farmer noticed.",
    "Café 👍 42\tok\n\nhi!  two  spaces",
    "the next token of the other side of the river",
]

# Strings whose ids the Rust tokenizer must reproduce.
TRICKY = [
    "", " ", "  ", "The", " The", "the  theory\tof\n\nthe other", "Hello, world!",
    "naïve café", "日本語のテキスト", "emoji 👍🏽 and ZWJ 👨‍👩‍👧", "x = f(y) + 42 * 3.14;",
    "<bos> <eos> <|endoftext|> <|im_start|>user", "don't I'LL we've", "1234567890",
    "tabs\t\tand\r\nCRLF", "https://example.com/a?b=c&d=e", "Ünïcödé NFD: e\u0301",
    "   leading and trailing   ",
]

GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]  # ids 0..3, as in Gemma
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen 2's pre-tokenizer pattern (single digits).
QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")


# --------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------

def gemma_tokenizer() -> Tokenizer:
    """SentencePiece-style BPE as Gemma's tokenizer.json has it: spaces become U+2581
    (no dummy prefix), no pre-tokenizer, byte-fallback pieces <0x00>..<0xFF>."""
    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.normalizer = normalizers.Replace(" ", "\u2581")
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_TARGET - 4 - 256, show_progress=False,
                                  special_tokens=[], max_token_length=8)
    trainer_tok.train_from_iterator(CORPUS, trainer=trainer)
    trained = json.loads(trainer_tok.to_str())
    vocab = {s: i for i, s in enumerate(GEMMA_SPECIALS)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece, _ in sorted(trained["model"]["vocab"].items(), key=lambda kv: kv[1]):
        if piece not in vocab:
            vocab[piece] = len(vocab)
    merges = [m if isinstance(m, list) else m.split(" ") for m in trained["model"]["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m) for m in merges], unk_token="<unk>",
                               fuse_unk=True, byte_fallback=True))
    tok.add_special_tokens(GEMMA_SPECIALS)
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                     decoders.Fuse()])
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", 2)])
    return tok


def qwen_tokenizer() -> Tokenizer:
    """Byte-level BPE as Qwen 2/2.5/3's tokenizer.json has it."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_TARGET, special_tokens=QWEN_SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return tok


def encode(tok: Tokenizer, text: str, literal: bool = True) -> list[int]:
    """Text as plain text (`literal`: special-token strings get ordinary tokens), or
    with special-token strings read as their ids, the library's default."""
    tok.encode_special_tokens = literal
    ids = tok.encode(text, add_special_tokens=False).ids
    tok.encode_special_tokens = True
    return ids


def write_tokenizer_cases(tok: Tokenizer, name: str):
    out = os.path.join(OUT_ROOT, "tokenizers")
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, f"{name}.json"))
    cases = [{"text": t, "ids": encode(tok, t, literal=False), "literal_ids": encode(tok, t),
              "decoded": tok.decode(encode(tok, t))}
             for t in TRICKY]
    with open(os.path.join(out, f"{name}_cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=0)
        f.write("\n")


# --------------------------------------------------------------------------
# Storage dtypes and safetensors
# --------------------------------------------------------------------------

def bf16_bits(a) -> np.ndarray:
    """float -> bfloat16 bits, rounding to nearest even (as torch does)."""
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_value(bits) -> np.ndarray:
    return (np.asarray(bits, dtype=np.uint32) << 16).view(np.float32).astype(np.float64)


def store(a, dtype):
    """(safetensors dtype, raw array, float64 value of what is stored)."""
    if dtype == "BF16":
        bits = bf16_bits(a)
        return "BF16", bits, bf16_value(bits)
    if dtype == "F16":
        h = np.asarray(a, dtype=np.float16)
        return "F16", h, h.astype(np.float64)
    s = np.asarray(a, dtype=np.float32)
    return "F32", s, s.astype(np.float64)


def round_to(x, dtype):
    """Rounds float64 values to the dtype (float32 first: exact for the products here);
    "F64" keeps them."""
    if dtype == "F64":
        return np.asarray(x, dtype=np.float64)
    if dtype == "BF16":
        return bf16_value(bf16_bits(np.asarray(x, dtype=np.float32)))
    if dtype == "F16":
        return np.asarray(x, dtype=np.float16).astype(np.float64)
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def save_safetensors(path, tensors):
    """tensors: name -> (dtype, raw array). Written as safetensors lays files out."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        dtype, arr = tensors[name]
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def save_weights(out_dir, raw, shards):
    if shards == 1:
        save_safetensors(os.path.join(out_dir, "model.safetensors"), raw)
        return
    names = sorted(raw)
    files = [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
    weight_map = {}
    for i, fname in enumerate(files):
        part = names[i::shards]
        save_safetensors(os.path.join(out_dir, fname), {n: raw[n] for n in part})
        weight_map.update({n: fname for n in part})
    total = sum(raw[n][1].nbytes for n in names)
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")


# --------------------------------------------------------------------------
# Numerics (float64, Hugging Face semantics)
# --------------------------------------------------------------------------

def rms(x, w, eps, offset=0.0):
    """RMSNorm; Gemma's scales by (1 + w), i.e. offset 1."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * (offset + w)


def silu(x):
    return x / (1.0 + np.exp(-x))


def rope(x, theta):
    """rotate_half RoPE on [heads, seq, d] at positions 0..seq-1."""
    s, d = x.shape[1], x.shape[2]
    inv = 1.0 / (theta ** (np.arange(0, d, 2, dtype=np.float64) / d))
    ang = np.outer(np.arange(s, dtype=np.float64), inv)
    emb = np.concatenate([ang, ang], axis=-1)
    return x * np.cos(emb) + rotate_half(x) * np.sin(emb)


def attention(q, k, v, scale, window=None, softcap=None):
    """q [h, s, d], k/v [kv, s, d]; causal, keys at distance < window when windowed."""
    k = np.repeat(k, q.shape[0] // k.shape[0], axis=0)
    v = np.repeat(v, q.shape[0] // v.shape[0], axis=0)
    s = q.shape[1]
    scores = q @ k.transpose(0, 2, 1) * scale
    if softcap is not None:
        scores = np.tanh(scores / softcap) * softcap
    i, j = np.meshgrid(np.arange(s), np.arange(s), indexing="ij")
    allowed = (j <= i) & ((i - j < window) if window else True)
    scores = np.where(allowed, scores, -np.inf)
    scores -= scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    return (p @ v).transpose(1, 0, 2).reshape(s, -1)


def heads(x, n):
    return x.reshape(x.shape[0], n, -1).transpose(1, 0, 2)


def linear(w, p, x, bias=False):
    y = x @ w[p + ".weight"].T
    return y + w[p + ".bias"] if bias else y


# --------------------------------------------------------------------------
# Families
# --------------------------------------------------------------------------

def base_config(model_type, arch, vocab, bos, eos, pad, dtype):
    return {
        "architectures": [arch], "model_type": model_type, "vocab_size": vocab,
        "hidden_size": HIDDEN, "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": N_LAYER, "num_attention_heads": N_HEAD,
        "num_key_value_heads": N_KV, "head_dim": HEAD_DIM, "max_position_embeddings": 128,
        "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "rope_scaling": None,
        "attention_dropout": 0.0, "initializer_range": 0.02, "use_cache": True,
        "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad,
        "torch_dtype": {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}[dtype],
        "transformers_version": TRANSFORMERS_VERSION,
    }


def random_weights(cfg, rs, extra):
    """HF-named random weights; `extra(p, W, N, B)` adds a family's own tensors."""
    d, m, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    q, kv = N_HEAD * HEAD_DIM, N_KV * HEAD_DIM
    W = lambda *s: rs.normal(0.0, 0.25, size=s)
    N = lambda n: rs.uniform(-0.6, 1.6, size=n)  # far from both 0 and 1
    B = lambda n: rs.normal(0.0, 0.3, size=n)
    w = {"model.embed_tokens.weight": W(V, d)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = N(d)
        w[p + "self_attn.q_proj.weight"] = W(q, d)
        w[p + "self_attn.k_proj.weight"] = W(kv, d)
        w[p + "self_attn.v_proj.weight"] = W(kv, d)
        w[p + "self_attn.o_proj.weight"] = W(d, q)
        w[p + "post_attention_layernorm.weight"] = N(d)
        w[p + "mlp.gate_proj.weight"] = W(m, d)
        w[p + "mlp.up_proj.weight"] = W(m, d)
        w[p + "mlp.down_proj.weight"] = W(d, m)
        extra(p, W, N, B)
    w["model.norm.weight"] = N(d)
    if not cfg.get("tie_word_embeddings", True):
        w["lm_head.weight"] = W(V, d)
    return w


def layer_windows(cfg):
    """The sliding window of each layer (None: full attention)."""
    if cfg.get("layer_types"):
        return [cfg["sliding_window"] if t == "sliding_attention" else None
                for t in cfg["layer_types"]]
    mt = cfg["model_type"]
    if mt == "gemma2":
        return [cfg["sliding_window"] if i % 2 == 0 else None for i in range(N_LAYER)]
    if mt in ("qwen2", "qwen3"):
        on = cfg.get("use_sliding_window") and cfg.get("sliding_window")
        return [cfg["sliding_window"] if on and i >= cfg["max_window_layers"] else None
                for i in range(N_LAYER)]
    if mt == "mistral":
        return [cfg.get("sliding_window")] * N_LAYER
    return [None] * N_LAYER


def forward(cfg, w, ids, emb_dtype, record=None):
    """Every layer's neuron activations and the final logits, float64; with `record` (a
    list), also appends each layer's hook values (`tiny_models.hooks`)."""
    mt, eps, theta = cfg["model_type"], cfg["rms_norm_eps"], cfg["rope_theta"]
    gemma = mt in ("gemma", "gemma2")
    off = 1.0 if gemma else 0.0
    x = w["model.embed_tokens.weight"][ids]
    if gemma:
        # HF: hidden * torch.tensor(hidden_size ** 0.5, dtype=hidden.dtype)
        x = round_to(x * round_to(math.sqrt(HIDDEN), emb_dtype), emb_dtype)
    if mt == "gemma2":
        scale = cfg["query_pre_attn_scalar"] ** -0.5
        softcap = cfg["attn_logit_softcapping"]
    else:
        scale, softcap = HEAD_DIM ** -0.5, None
    bias = mt == "qwen2"
    acts = []
    for i, window in enumerate(layer_windows(cfg)):
        p = f"model.layers.{i}."
        resid_pre = x
        h = rms(x, w[p + "input_layernorm.weight"], eps, off)
        q = heads(linear(w, p + "self_attn.q_proj", h, bias), N_HEAD)
        k = heads(linear(w, p + "self_attn.k_proj", h, bias), N_KV)
        v = heads(linear(w, p + "self_attn.v_proj", h, bias), N_KV)
        if mt == "qwen3":
            q = rms(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms(k, w[p + "self_attn.k_norm.weight"], eps)
        q, k = rope(q, theta), rope(k, theta)
        a = attention(q, k, v, scale, window, softcap) @ w[p + "self_attn.o_proj.weight"].T
        if mt == "gemma2":
            a = rms(a, w[p + "post_attention_layernorm.weight"], eps, off)
            x = x + a
            m = rms(x, w[p + "pre_feedforward_layernorm.weight"], eps, off)
        else:
            x = x + a
            m = rms(x, w[p + "post_attention_layernorm.weight"], eps, off)
        act_fn = gelu_new if gemma else silu
        act = act_fn(m @ w[p + "mlp.gate_proj.weight"].T) * (m @ w[p + "mlp.up_proj.weight"].T)
        acts.append(act)
        f = act @ w[p + "mlp.down_proj.weight"].T
        if mt == "gemma2":
            f = rms(f, w[p + "post_feedforward_layernorm.weight"], eps, off)
        resid_mid, x = x, x + f
        if record is not None:
            record.append(hooks(resid_pre, rms(resid_mid, 1.0, eps), a, resid_mid, act, f, x))
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    logits = rms(x, w["model.norm.weight"], eps, off) @ head.T
    if mt == "gemma2":
        cap = cfg["final_logit_softcapping"]
        logits = np.tanh(logits / cap) * cap
    return acts, logits


def gemma_cfg(vocab):
    c = base_config("gemma", "GemmaForCausalLM", vocab, 2, 1, 0, "F32")
    c.update({"hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh",
              "attention_bias": False, "tie_word_embeddings": True})
    return c


def gemma2_cfg(vocab):
    c = base_config("gemma2", "Gemma2ForCausalLM", vocab, 2, 1, 0, "BF16")
    c.update({"hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh",
              "attention_bias": False, "tie_word_embeddings": True,
              "query_pre_attn_scalar": 24, "sliding_window": WINDOW,
              "attn_logit_softcapping": 1.5, "final_logit_softcapping": 2.0,
              "cache_implementation": "hybrid"})
    return c


def qwen2_cfg(vocab):
    c = base_config("qwen2", "Qwen2ForCausalLM", vocab, 0, 0, None, "F16")
    c.update({"hidden_act": "silu", "tie_word_embeddings": False, "rope_theta": 1000000.0,
              "use_sliding_window": True, "sliding_window": WINDOW, "max_window_layers": 1})
    return c


def qwen3_cfg(vocab):
    c = base_config("qwen3", "Qwen3ForCausalLM", vocab, 0, 0, None, "BF16")
    c.update({"hidden_act": "silu", "tie_word_embeddings": True, "attention_bias": False,
              "rope_theta": 1000000.0, "use_sliding_window": False, "sliding_window": None,
              "max_window_layers": N_LAYER})
    return c


def mistral_cfg(vocab):
    c = base_config("mistral", "MistralForCausalLM", vocab, 2, 1, None, "F32")
    c.update({"hidden_act": "silu", "tie_word_embeddings": False, "sliding_window": WINDOW})
    return c


def extra_tensors(model_type):
    def add(w):
        def f(p, W, N, B):
            if model_type == "gemma2":
                w[p + "pre_feedforward_layernorm.weight"] = N(HIDDEN)
                w[p + "post_feedforward_layernorm.weight"] = N(HIDDEN)
            if model_type == "qwen2":
                for n, size in (("q", N_HEAD * HEAD_DIM), ("k", N_KV * HEAD_DIM),
                                ("v", N_KV * HEAD_DIM)):
                    w[p + f"self_attn.{n}_proj.bias"] = B(size)
            if model_type == "qwen3":
                w[p + "self_attn.q_norm.weight"] = N(HEAD_DIM)
                w[p + "self_attn.k_norm.weight"] = N(HEAD_DIM)
        return f
    return add


# family -> (config, dtype, shards, tokenizer, seed)
FAMILIES = {
    "gemma": (gemma_cfg, "F32", 1, "gemma", 11),
    "gemma2": (gemma2_cfg, "BF16", 2, "gemma", 12),
    "qwen2": (qwen2_cfg, "F16", 1, "qwen", 13),
    "qwen3": (qwen3_cfg, "BF16", 1, "qwen", 14),
    "mistral": (mistral_cfg, "F32", 1, "gemma", 15),
}


def build_weights(cfg, seed):
    rs = np.random.RandomState(seed)
    w = {}
    extra = extra_tensors(cfg["model_type"])(w)
    base = random_weights(cfg, rs, extra)
    base.update(w)
    return base


def make_family(name, tok, bos):
    make_cfg, dtype, shards, _, seed = FAMILIES[name]
    cfg = make_cfg(tok.get_vocab_size())
    out_dir = os.path.join(OUT_ROOT, name)
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):
        os.remove(os.path.join(out_dir, f))
    raw, w64 = {}, {}
    for k, v in build_weights(cfg, seed).items():
        dt, arr, val = store(v, dtype)
        raw[k], w64[k] = (dt, arr), val
    save_weights(out_dir, raw, shards)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    ref = {"bos_id": bos, "texts": [], "next_token": []}
    for text in REF_TEXTS:
        ids = [bos] + encode(tok, text)
        acts, logits = forward(cfg, w64, np.array(ids), dtype)
        ref["texts"].append(text_entry(text, ids, acts))
        last = logits[-1]
        top = np.argsort(-last, kind="stable")[:5]
        ref["next_token"].append({"ids": ids, "top_ids": [int(t) for t in top],
                                  "top_logits": [sig7(last[t]) for t in top]})
    check_particulars(cfg, w64, ref, dtype)
    write_reference(out_dir, ref, name)
    return cfg, w64


def check_particulars(cfg, w64, ref, dtype):
    """Asserts that each particular of the family changes the activations, so that a
    runtime without it fails the comparison."""
    ids = np.array(ref["texts"][0]["ids"])
    assert len(ids) > 2 * WINDOW, "texts must be longer than the window"
    base = forward(cfg, w64, ids, dtype)[0]

    def differs(label, cfg2=None, w2=None, dtype2=None):
        other = forward(cfg2 or cfg, w2 or w64, ids, dtype2 or dtype)[0]
        rel = max(np.abs(a - b).max() / np.abs(a).max() for a, b in zip(base, other))
        assert rel > 1e-2, f"{cfg['model_type']}: {label} changes nothing ({rel:.1e})"
        print(f"  without {label}: activations change by up to {rel:.2f} relative")

    mt = cfg["model_type"]
    if mt in ("gemma", "gemma2"):
        plain = {k: (v - 1.0 if k.endswith("norm.weight") else v) for k, v in w64.items()}
        differs("1 + w (plain w)", w2=plain)
    if any(layer_windows(cfg)):
        differs("the sliding window", dict(cfg, sliding_window=None, use_sliding_window=False,
                                           model_type=mt if mt != "mistral" else "llama"))
    if mt == "gemma2":
        differs("soft-capping", dict(cfg, attn_logit_softcapping=1e9))
        differs("query_pre_attn_scalar", dict(cfg, query_pre_attn_scalar=HEAD_DIM))


def main():
    toks = {"gemma": gemma_tokenizer(), "qwen": qwen_tokenizer()}
    write_tokenizer_cases(toks["gemma"], "gemma")
    write_tokenizer_cases(toks["qwen"], "qwen")
    for text in REF_TEXTS:
        for t in toks.values():
            assert t.decode(encode(t, text)) == text, "tokenizers must round-trip"
    for name, (_, _, _, tok_name, _) in FAMILIES.items():
        tok = toks[tok_name]
        bos = tok.token_to_id("<bos>" if tok_name == "gemma" else "<|endoftext|>")
        make_family(name, tok, bos)


if __name__ == "__main__":
    main()
