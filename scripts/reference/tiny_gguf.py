#!/usr/bin/env python3
"""A tiny random-weight Llama GGUF of the Llama-2/3.1 kind + float64 reference.

Writes fixtures/tiny/gguf/:

* model.gguf     - ``general.architecture = llama`` written with the ``gguf``
                   package the way llama.cpp's converter writes a checkpoint:
                   a SentencePiece tokenizer (``tokenizer.ggml.model = llama``:
                   tokens, scores, token types, ``<unk>``/``<s>``/``</s>``,
                   byte-fallback pieces), q/k rows permuted for the interleaved
                   RoPE, a head size (``llama.attention.key_length`` = 16) that
                   is not hidden / heads (8), grouped KV heads, Llama 3.1 RoPE
                   scaling stored as the ``rope_freqs.weight`` factors, and the
                   2-D weights quantized to Q8_0.
* extra.gguf     - the same with one tensor the Llama block does not use
                   (``blk.0.attn_q.bias``): a loader must refuse it rather than
                   compute something else.
* ../llama31_hf/ - the same weights as a Hugging Face folder: config.json with
                   ``rope_scaling = {"rope_type": "llama3", ...}`` and ``head_dim``,
                   model.safetensors (HF names and layout, float32), and a
                   tokenizer.json converted from the SentencePiece model the way
                   ``transformers``' LlamaConverter does (BPE with byte fallback,
                   merges ranked by the joined piece's score). Same reference.
* reference.json - token ids from the ``sentencepiece`` library itself (BOS
                   prepended) and the MLP neuron activations of every layer and
                   neuron from an independent float64 numpy forward pass in the
                   Hugging Face layout: q/k un-permuted, ``rotate_half`` RoPE, and
                   the Llama 3 inverse frequencies computed with Hugging Face's
                   formula (``_compute_llama3_parameters``), not from the factors.

The forward pass uses the weights as stored (Q8_0 dequantized by
``gguf.quants.dequantize``) promoted to float64.

Run from the repository root:  python3 scripts/reference/tiny_gguf.py
"""

from __future__ import annotations

import io
import json
import math
import os

import gguf
import numpy as np
import sentencepiece as spm
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, normalizers

from tiny_models import CORPUS as TINY_CORPUS
from tiny_models import rms_norm, rotate_half, text_entry, write_reference

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO_ROOT, "fixtures", "tiny", "gguf")

HIDDEN = 32
N_HEAD = 4
N_KV = 2
HEAD_DIM = 16  # not HIDDEN // N_HEAD
INTERMEDIATE = 64
N_LAYER = 3
THETA = 10000.0
EPS = 1e-5
# Llama 3.1 rope scaling, with a short original context so that most of the
# tiny model's frequencies are scaled.
SCALING = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
           "original_max_position_embeddings": 256}
VOCAB = 400

# The tiny byte-level models' training text, and a line of digits.
CORPUS = TINY_CORPUS + ["In 1984 there were 42 boats, 7 farms and 365 days in every year."]

REF_TEXTS = [
    "The fox ran into the village.",
    "Café 👍 42\tok\n\nhi!",
    "  two  spaces, then the next token",
    "the theory of the other side",
    "Zebras? 2024-12-02 <s> </s> naïve",
]


def train_spm() -> spm.SentencePieceProcessor:
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS),
        model_writer=model,
        model_type="bpe",
        vocab_size=VOCAB,
        byte_fallback=True,
        split_digits=True,
        normalization_rule_name="identity",
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        minloglevel=2,
        num_threads=1,
    )
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def token_type(sp, i):
    if sp.IsUnknown(i):
        return gguf.TokenType.UNKNOWN
    if sp.IsControl(i):
        return gguf.TokenType.CONTROL
    if sp.IsByte(i):
        return gguf.TokenType.BYTE
    if sp.IsUnused(i):
        return gguf.TokenType.UNUSED
    return gguf.TokenType.NORMAL


def llama3_inv_freq():
    """Hugging Face's `_compute_llama3_parameters`."""
    inv_freq = 1.0 / (THETA ** (np.arange(0, HEAD_DIM, 2, dtype=np.float64) / HEAD_DIM))
    factor, low, high = SCALING["factor"], SCALING["low_freq_factor"], SCALING["high_freq_factor"]
    old = SCALING["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv_freq
    out = np.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * out / factor + smooth * out
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return np.where(medium, smoothed, out)


def llama3_rope_factors():
    """llama.cpp's converter (`LlamaModel.generate_extra_tensors`): one divisor per
    frequency, stored as `rope_freqs.weight`."""
    base_freqs = 1.0 / (THETA ** (np.arange(0, HEAD_DIM, 2, dtype=np.float32) / HEAD_DIM))
    factor, low, high = SCALING["factor"], SCALING["low_freq_factor"], SCALING["high_freq_factor"]
    old = SCALING["original_max_position_embeddings"]
    out = []
    for freq in base_freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            out.append(1.0)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def permute(w, n_head):
    """llama.cpp's converter: rows reordered for the interleaved RoPE."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def forward(w, ids, inv_freq):
    """Hugging Face LlamaModel in float64 (weights in HF layout, [out, in])."""
    s = len(ids)
    freqs = np.outer(np.arange(s, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    cos, sin = np.cos(emb), np.sin(emb)
    x = w["embed"][ids]
    acts = []
    for i in range(N_LAYER):
        b = w["blocks"][i]
        a = rms_norm(x, b["attn_norm"], EPS)
        q = (a @ b["q"].T).reshape(s, N_HEAD, HEAD_DIM).transpose(1, 0, 2)
        k = (a @ b["k"].T).reshape(s, N_KV, HEAD_DIM).transpose(1, 0, 2)
        v = (a @ b["v"].T).reshape(s, N_KV, HEAD_DIM).transpose(1, 0, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, N_HEAD // N_KV, axis=0)
        v = np.repeat(v, N_HEAD // N_KV, axis=0)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(HEAD_DIM)
        scores = scores + np.triu(np.full((s, s), -np.inf), k=1)
        scores -= scores.max(axis=-1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(axis=-1, keepdims=True)
        y = (p @ v).transpose(1, 0, 2).reshape(s, N_HEAD * HEAD_DIM)
        x = x + y @ b["o"].T
        m = rms_norm(x, b["ffn_norm"], EPS)
        gate = m @ b["gate"].T
        act = gate / (1.0 + np.exp(-gate)) * (m @ b["up"].T)
        acts.append(act)
        x = x + act @ b["down"].T
    return acts


def q8(w):
    """Quantize to Q8_0 and return (bytes to store, the dequantized float64)."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    data = gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0)
    back = gguf.quants.dequantize(data, gguf.GGMLQuantizationType.Q8_0)
    return data, back.reshape(w.shape).astype(np.float64)


def write(path, sp, tensors, extra):
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("tiny-llama31-spm")
    writer.add_block_count(N_LAYER)
    writer.add_context_length(128)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(INTERMEDIATE)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_KV)
    writer.add_key_length(HEAD_DIM)
    writer.add_value_length(HEAD_DIM)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(THETA)
    writer.add_layer_norm_rms_eps(EPS)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([sp.IdToPiece(i) for i in range(sp.GetPieceSize())])
    writer.add_token_scores([sp.GetScore(i) for i in range(sp.GetPieceSize())])
    writer.add_token_types([token_type(sp, i) for i in range(sp.GetPieceSize())])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_space_prefix(True)
    for name, (data, qtype) in tensors.items():
        if qtype == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(name, data)
        else:
            writer.add_tensor(name, data, raw_dtype=qtype)
    for name, data in extra.items():
        writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def hf_tokenizer(sp) -> Tokenizer:
    """transformers' LlamaConverter (legacy Llama tokenizer.json) for a BPE model."""
    vocab = {sp.IdToPiece(i): i for i in range(sp.GetPieceSize())}
    merges = []
    for piece, pid in vocab.items():
        local = [(piece[:k], piece[k:], sp.GetScore(pid)) for k in range(1, len(piece))
                 if piece[:k] in vocab and piece[k:] in vocab]
        merges.extend(sorted(local, key=lambda m: (vocab[m[0]], vocab[m[1]])))
    merges.sort(key=lambda m: m[2], reverse=True)
    tok = Tokenizer(models.BPE(vocab, [(a, b) for a, b, _ in merges], unk_token="<unk>",
                               fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"),
                                           normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    return tok


def write_hf(out_dir, sp, hf, out_w, final_norm):
    os.makedirs(out_dir, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": HIDDEN, "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": N_LAYER, "num_attention_heads": N_HEAD,
        "num_key_value_heads": N_KV, "head_dim": HEAD_DIM, "hidden_act": "silu",
        "rms_norm_eps": EPS, "rope_theta": THETA,
        "rope_scaling": dict(SCALING, rope_type="llama3"),
        "max_position_embeddings": 128, "tie_word_embeddings": False,
        "bos_token_id": 1, "eos_token_id": 2, "vocab_size": sp.GetPieceSize(),
        "torch_dtype": "float32",
    }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    w = {"model.embed_tokens.weight": hf["embed"], "model.norm.weight": final_norm,
         "lm_head.weight": out_w}
    for i, b in enumerate(hf["blocks"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = b["attn_norm"]
        w[p + "post_attention_layernorm.weight"] = b["ffn_norm"]
        for k in ["q", "k", "v", "o"]:
            w[p + f"self_attn.{k}_proj.weight"] = b[k]
        for k in ["gate", "up", "down"]:
            w[p + f"mlp.{k}_proj.weight"] = b[k]
    w = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in w.items()}
    save_file(w, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    hf_tokenizer(sp).save(os.path.join(out_dir, "tokenizer.json"))


def main():
    os.makedirs(OUT, exist_ok=True)
    sp = train_spm()
    n_vocab = sp.GetPieceSize()
    print(f"sentencepiece: {n_vocab} pieces")
    rs = np.random.RandomState(7)
    W = lambda *s: rs.normal(0.0, 0.2, size=s)
    N = lambda n: 1.0 + rs.normal(0.0, 0.1, size=n)
    F32 = gguf.GGMLQuantizationType.F32
    Q8 = gguf.GGMLQuantizationType.Q8_0

    tensors = {}
    hf = {"blocks": []}
    embed = np.asarray(W(n_vocab, HIDDEN), dtype=np.float32)
    tensors["token_embd.weight"] = (embed, F32)
    hf["embed"] = embed.astype(np.float64)
    factors = llama3_rope_factors()
    tensors["rope_freqs.weight"] = (factors, F32)
    q_out, kv_out = N_HEAD * HEAD_DIM, N_KV * HEAD_DIM
    for i in range(N_LAYER):
        blk = {}
        p = f"blk.{i}."
        for name, hf_name, shape, heads in [
            ("attn_q", "q", (q_out, HIDDEN), N_HEAD),
            ("attn_k", "k", (kv_out, HIDDEN), N_KV),
            ("attn_v", "v", (kv_out, HIDDEN), None),
            ("attn_output", "o", (HIDDEN, q_out), None),
            ("ffn_gate", "gate", (INTERMEDIATE, HIDDEN), None),
            ("ffn_up", "up", (INTERMEDIATE, HIDDEN), None),
            ("ffn_down", "down", (HIDDEN, INTERMEDIATE), None),
        ]:
            w_hf = np.asarray(W(*shape), dtype=np.float32)
            stored = permute(w_hf, heads) if heads else w_hf
            data, back = q8(stored)
            tensors[p + name + ".weight"] = (data, Q8)
            # Un-permute what is stored, as the reference works in HF layout.
            if heads:
                back = (back.reshape(heads, HEAD_DIM // 2, 2, HIDDEN)
                        .swapaxes(1, 2).reshape(shape))
            blk[hf_name] = back
        for name, hf_name in [("attn_norm", "attn_norm"), ("ffn_norm", "ffn_norm")]:
            v = np.asarray(N(HIDDEN), dtype=np.float32)
            tensors[p + name + ".weight"] = (v, F32)
            blk[hf_name] = v.astype(np.float64)
        hf["blocks"].append(blk)
    final_norm = np.asarray(N(HIDDEN), dtype=np.float32)
    tensors["output_norm.weight"] = (final_norm, F32)
    out_w = np.asarray(W(n_vocab, HIDDEN), dtype=np.float32)
    tensors["output.weight"] = (out_w, F32)
    write_hf(os.path.join(OUT, "..", "llama31_hf"), sp, hf, out_w, final_norm)

    write(os.path.join(OUT, "model.gguf"), sp, tensors, {})
    bias = {"blk.0.attn_q.bias": np.asarray(W(q_out), dtype=np.float32)}
    write(os.path.join(OUT, "extra.gguf"), sp, tensors, bias)

    inv_freq = llama3_inv_freq()
    plain = 1.0 / (THETA ** (np.arange(0, HEAD_DIM, 2, dtype=np.float64) / HEAD_DIM))
    print("inverse frequency divisors:", np.round(plain / inv_freq, 4), "stored:", factors)
    ref = {"bos_id": 1, "texts": []}
    worst_unscaled = 0.0
    hf_tok = hf_tokenizer(sp)
    for text in REF_TEXTS:
        ids = [1] + sp.encode(text)
        print(f"  {text!r} -> {ids}")
        assert hf_tok.encode(text).ids == ids[1:], "the converted tokenizer.json must agree"
        acts = forward(hf, np.array(ids), inv_freq)
        # The fixture must tell scaled from unscaled RoPE apart.
        unscaled = forward(hf, np.array(ids), plain)
        for a, u in zip(acts, unscaled):
            worst_unscaled = max(worst_unscaled, np.abs(a - u).max() / np.abs(a).max())
        ref["texts"].append(text_entry(text, ids, acts))
    print(f"unscaled RoPE differs by up to {worst_unscaled:.3f} (relative)")
    assert worst_unscaled > 0.01
    write_reference(OUT, ref, "gguf")


if __name__ == "__main__":
    main()
