#!/usr/bin/env python3
"""Tiny Gemma, Gemma 2, Qwen 2 and Qwen 3 GGUF files + float64 reference.

Writes fixtures/tiny/gguf_families/<family>/model.gguf and reference.json. Each GGUF holds
the random weights of tiny_families.py (same shapes and seeds) as llama.cpp's
``convert_hf_to_gguf.py`` writes that family, with the ``gguf`` package:

* tensor names from ``gguf.TensorNameMap`` (the converter's map), 2-D weights in
  F16 (gemma, qwen2) or BF16 (gemma2, qwen3), 1-D tensors in F32;
* Gemma and Gemma 2: every ``*norm.weight`` written as ``w + 1`` (the converter's
  ``GemmaModel.modify_tensors``), no ``output.weight`` (tied), a SentencePiece
  vocabulary (``tokenizer.ggml.model = llama``, ``add_space_prefix = false``)
  trained here with the ``sentencepiece`` library, whose ids are the reference ids;
  Gemma 2's ``attn_logit_softcapping``, ``final_logit_softcapping`` and
  ``attention.sliding_window`` keys;
* Qwen 2 and Qwen 3: q/k as in Hugging Face (not permuted), Qwen 2's q/k/v biases as
  ``attn_{q,k,v}.bias``, Qwen 3's ``attn_{q,k}_norm.weight``, a byte-level BPE
  (``tokenizer.ggml.model = gpt2``, ``pre = qwen2``) from tiny_families' Qwen-style
  tokenizer.json, whose ids (the ``tokenizers`` library's) are the reference ids.

The reference activations come from tiny_families.forward (Hugging Face semantics,
float64) on the values as stored, with the settings a GGUF carries: GGUF has no
``query_pre_attn_scalar`` (llama.cpp uses head_dim^-0.5 except for Gemma 2 27B), so
this Gemma 2 declares ``query_pre_attn_scalar = head_dim``; no Qwen sliding window;
the embedding scale of Gemma computed in float32, as llama.cpp does.

Run from the repository root:  python3 scripts/reference/tiny_families_gguf.py
"""

from __future__ import annotations

import io
import json
import os

import gguf
import numpy as np
import sentencepiece as spm

import tiny_families as tf
from tiny_models import CORPUS

OUT = os.path.join(tf.OUT_ROOT, "gguf_families")
Q = gguf.GGMLQuantizationType
ARCH = {"gemma": gguf.MODEL_ARCH.GEMMA, "gemma2": gguf.MODEL_ARCH.GEMMA2,
        "qwen2": gguf.MODEL_ARCH.QWEN2, "qwen3": gguf.MODEL_ARCH.QWEN3}
MATRIX_TYPE = {"gemma": Q.F16, "gemma2": Q.BF16, "qwen2": Q.F16, "qwen3": Q.BF16}


def train_gemma_spm() -> spm.SentencePieceProcessor:
    """A Gemma-like SentencePiece BPE: no dummy prefix, byte fallback, digits split."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=model, model_type="bpe",
        vocab_size=tf.VOCAB_TARGET, byte_fallback=True, split_digits=True,
        normalization_rule_name="identity", add_dummy_prefix=False,
        remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
        character_coverage=1.0, pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        minloglevel=2, num_threads=1)
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def spm_type(sp, i):
    if sp.IsUnknown(i):
        return gguf.TokenType.UNKNOWN
    if sp.IsControl(i):
        return gguf.TokenType.CONTROL
    if sp.IsByte(i):
        return gguf.TokenType.BYTE
    return gguf.TokenType.NORMAL


def add_gemma_vocab(writer, sp):
    n = sp.GetPieceSize()
    writer.add_tokenizer_model("llama")
    writer.add_token_list([sp.IdToPiece(i) for i in range(n)])
    writer.add_token_scores([sp.GetScore(i) for i in range(n)])
    writer.add_token_types([spm_type(sp, i) for i in range(n)])
    writer.add_bos_token_id(2)
    writer.add_eos_token_id(1)
    writer.add_unk_token_id(3)
    writer.add_pad_token_id(0)
    writer.add_add_space_prefix(False)


def add_qwen_vocab(writer, tok):
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    special = {t["content"] for t in spec["added_tokens"]}
    tokens = sorted(vocab, key=vocab.get)
    assert [vocab[t] for t in tokens] == list(range(len(tokens)))
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL
                            for t in tokens])
    writer.add_token_merges(merges)
    bos = vocab["<|endoftext|>"]
    writer.add_bos_token_id(bos)
    writer.add_eos_token_id(bos)
    writer.add_add_bos_token(False)


def gguf_config(name, vocab):
    """The family's tiny config with what a GGUF can carry."""
    cfg = tf.FAMILIES[name][0](vocab)
    if name == "gemma2":
        cfg["query_pre_attn_scalar"] = tf.HEAD_DIM
    if name == "qwen2":
        cfg["use_sliding_window"] = False
    return cfg


def write_gguf(path, name, cfg, tensors, vocab_writer):
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[ARCH[name]])
    writer.add_name(f"tiny-{name}")
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_block_count(cfg["num_hidden_layers"])
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(cfg["num_attention_heads"])
    writer.add_head_count_kv(cfg["num_key_value_heads"])
    writer.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    writer.add_key_length(cfg["head_dim"])
    writer.add_value_length(cfg["head_dim"])
    if name.startswith("qwen"):
        writer.add_rope_freq_base(cfg["rope_theta"])
    if name == "gemma2":
        writer.add_attn_logit_softcapping(cfg["attn_logit_softcapping"])
        writer.add_final_logit_softcapping(cfg["final_logit_softcapping"])
        writer.add_sliding_window(cfg["sliding_window"])
    vocab_writer(writer)
    for tname, (data, qtype) in tensors.items():
        if qtype == Q.F32:
            writer.add_tensor(tname, data)
        else:
            writer.add_tensor(tname, data, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def convert(name, cfg, weights):
    """GGUF tensors (name -> (data, type)) and the float64 values they hold, by HF name."""
    tmap = gguf.TensorNameMap(ARCH[name], cfg["num_hidden_layers"])
    tensors, values = {}, {}
    for hf_name, w in weights.items():
        if hf_name == "lm_head.weight" and name.startswith("gemma"):
            continue
        base, suffix = hf_name.rsplit(".", 1)
        gname = tmap.get_name(base)
        assert gname is not None, hf_name
        if w.ndim == 1:
            data = np.asarray(w, dtype=np.float32)
            value = data.astype(np.float64)
            if name.startswith("gemma") and hf_name.endswith("norm.weight"):
                data = (data.astype(np.float32) + np.float32(1.0))
                value = data.astype(np.float64) - 1.0  # the forward adds 1 back
            tensors[f"{gname}.{suffix}"] = (data, Q.F32)
        else:
            qtype = MATRIX_TYPE[name]
            data = gguf.quants.quantize(np.ascontiguousarray(w, dtype=np.float32), qtype)
            value = gguf.quants.dequantize(data, qtype).reshape(w.shape).astype(np.float64)
            tensors[f"{gname}.{suffix}"] = (data, qtype)
        values[hf_name] = value
    return tensors, values


def main():
    os.makedirs(OUT, exist_ok=True)
    sp = train_gemma_spm()
    qwen = tf.qwen_tokenizer()
    for name in ARCH:
        if name.startswith("gemma"):
            vocab, bos = sp.GetPieceSize(), 2
            encode = lambda t: sp.EncodeAsIds(t)
            vocab_writer = lambda w: add_gemma_vocab(w, sp)
        else:
            vocab, bos = qwen.get_vocab_size(), qwen.token_to_id("<|endoftext|>")
            encode = lambda t: tf.encode(qwen, t)
            vocab_writer = lambda w: add_qwen_vocab(w, qwen)
        cfg = gguf_config(name, vocab)
        tensors, w64 = convert(name, cfg, tf.build_weights(cfg, tf.FAMILIES[name][4]))
        out = os.path.join(OUT, name)
        os.makedirs(out, exist_ok=True)
        write_gguf(os.path.join(out, "model.gguf"), name, cfg, tensors, vocab_writer)
        ref = {"bos_id": bos, "texts": []}
        for text in tf.REF_TEXTS:
            ids = [bos] + encode(text)
            acts, _ = tf.forward(cfg, w64, np.array(ids), "F32")
            ref["texts"].append(tf.text_entry(text, ids, acts))
        with open(os.path.join(out, "reference.json"), "w", encoding="utf-8") as f:
            json.dump(ref, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        size = os.path.getsize(os.path.join(out, "model.gguf"))
        print(f"{name}.gguf: {size} bytes, vocab {vocab}")


if __name__ == "__main__":
    main()
