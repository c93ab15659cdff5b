#!/usr/bin/env python3
"""Independent float64 reference for SmolLM2-135M-Instruct (Q4_1 GGUF).

This is the *oracle* the Rust runtime is tested against.  It deliberately
shares no code or conventions with the Rust implementation:

* weights are dequantized with the reference `gguf` Python package
  (``gguf.quants.dequantize``) and promoted to float64;
* the q/k projection rows, which llama.cpp's converter permuted so that an
  interleaved (GPT-J style) RoPE applies, are *un-permuted* back to the
  Hugging Face layout and the HF ``rotate_half`` RoPE is used;
* token ids come from llama.cpp's own tokenizer (``llama-cpp-python`` with
  ``vocab_only=True``).

The forward pass mirrors ``transformers.LlamaForCausalLM`` exactly:

    x = embed[ids]
    per layer:
        h   = x + o_proj(attn(rmsnorm(x) * attn_norm))      # causal, GQA
        m   = rmsnorm(h) * ffn_norm
        act = silu(gate(m)) * up(m)     <- recorded "neuron activation"
        x   = h + down(act)
    logits = (rmsnorm(x) * output_norm) @ embed.T           # tied LM head

Outputs (all under fixtures/reference/):

* smollm2_activations.json  - MLP neuron activations for a few layers/neurons
* smollm2_tokenizer.json    - llama.cpp token ids for tricky strings (no BOS)
* smollm2_next_token.json   - top-10 next-token logits for a sanity prompt

Run from the repository root:  python3 scripts/reference/smollm2_reference.py
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_PATH = os.path.join(REPO_ROOT, "data", "models", MODEL_FILE)
OUT_DIR = os.path.join(REPO_ROOT, "fixtures", "reference")
GENERATOR = "scripts/reference/smollm2_reference.py"

RECORD_LAYERS = [0, 14, 29]
N_RANDOM_NEURONS = 8   # per layer, drawn with np.random.RandomState(0)
TOP_PER_TEXT = 2       # per text and layer: neurons with largest max activation

# Texts whose activations are recorded.  Each must tokenize to 10..60 tokens.
TEXTS = [
    ("prose",
     "The old lighthouse keeper climbed the spiral stairs every evening, "
     "trimming the wick and watching ships drift past the rocky coast."),
    ("python_code",
     "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n"
     "        a, b = b, a + b\n    return a\n"),
    ("numbers_dates",
     "On 2024-03-15 the invoice #48213 totaled $1,299.95 (3.5% tax), "
     "due by 12/31/2025 at 23:59."),
    ("unicode",
     "Café naïve résumé — 東京は日本の首都です。 Emoji: 👍🏽 🎉 ✨ déjà vu!"),
    ("whitespace",
     "col1\tcol2\t\tcol3\n\n\nindented    four   spaces\n  \t mixed \t\n end"),
    ("punctuation",
     "Wait... what?!? (Really) -- [yes]; {no}: \"quoted\" 'single' <tag/> "
     "a&b | c^d ~e @f #g %h *i*"),
    ("url_email",
     "Visit https://www.example.com/path/to/page?query=42&lang=en#top "
     "or email john.doe+test@example.org for help."),
    ("fortune_quote",
     "\"The only way to do great work is to love what you do. If you haven't "
     "found it yet, keep looking.\" -- Steve Jobs"),
    ("mixed_case",
     "The NASA rover and the FBI agent met McDonald's CEO in NEW YORK; "
     "iPhone users LOVE camelCase and SHOUTING LOUDLY."),
    ("chat_prompt",
     "Question: What is the boiling point of water at sea level?\n"
     "Answer: It boils at 100 degrees Celsius."),
]

# Tricky strings for the tokenizer fixture (ids without BOS).
TOKENIZER_STRINGS = [
    "The",
    "The cat sat on the mat.",
    " The",
    "  leading spaces",
    "trailing spaces   ",
    "multiple     spaces   here",
    "\n\n",
    "line one\n\nline two\n",
    "\ttab\tseparated\t\tvalues",
    "12345",
    "3.14159",
    "1,000,000 and 2024-01-01",
    "don't",
    "I'LL",
    "we're they've she'd",
    "café naïve",
    "日本語",
    "👍🏽 🎉",
    "def f(x):\n    return x**2",
    "<|im_start|>",
    "<|im_start|>user\nhi<|im_end|>",
    "https://github.com/huggingface/transformers?tab=readme#usage",
    "HTTPServer2Go",
    "",
    " ",
]


# --------------------------------------------------------------------------
# Model loading
# --------------------------------------------------------------------------

def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def field_value(reader: GGUFReader, key: str):
    return reader.fields[key].contents()


def tensor_f64(t) -> np.ndarray:
    """Dequantize a GGUF tensor to float64 with its numpy (row-major) shape.

    GGUF lists dimensions innermost-first, so the numpy shape is the reverse
    of ``t.shape`` (e.g. ffn_gate: GGUF [576, 1536] -> numpy [1536, 576],
    i.e. [out_features, in_features] like a torch Linear weight)."""
    arr = dequantize(t.data, t.tensor_type)
    shape = tuple(int(d) for d in reversed(list(t.shape)))
    return np.asarray(arr, dtype=np.float64).reshape(shape)


def unpermute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """Invert llama.cpp's convert_hf_to_gguf ``permute`` of q/k weights.

    The converter did (w_hf -> w_gguf):
        w.reshape(n_head, 2, hd // 2, in).swapaxes(1, 2).reshape(out, in)
    i.e. gguf row h*hd + 2*j + a  ==  hf row h*hd + a*hd/2 + j.
    The inverse swaps the same axes back."""
    out, inp = w.shape
    hd = out // n_head
    return w.reshape(n_head, hd // 2, 2, inp).swapaxes(1, 2).reshape(out, inp)


class SmolLM2:
    def __init__(self, path: str):
        r = GGUFReader(path)
        self.n_layer = int(field_value(r, "llama.block_count"))
        self.d_model = int(field_value(r, "llama.embedding_length"))
        self.d_mlp = int(field_value(r, "llama.feed_forward_length"))
        self.n_head = int(field_value(r, "llama.attention.head_count"))
        self.n_kv = int(field_value(r, "llama.attention.head_count_kv"))
        self.theta = float(field_value(r, "llama.rope.freq_base"))
        # Stored as float32 (9.99999975e-06); use it as read.
        self.eps = float(field_value(r, "llama.attention.layer_norm_rms_epsilon"))
        self.bos_id = int(field_value(r, "tokenizer.ggml.bos_token_id"))
        self.head_dim = self.d_model // self.n_head

        tensors = {t.name: t for t in r.tensors}
        self.embed = tensor_f64(tensors["token_embd.weight"])        # [vocab, d]
        self.out_norm = tensor_f64(tensors["output_norm.weight"])
        # SmolLM2 ties the LM head to the embedding (no output.weight).
        if "output.weight" in tensors:
            self.lm_head = tensor_f64(tensors["output.weight"])
        else:
            self.lm_head = self.embed

        self.layers = []
        for i in range(self.n_layer):
            g = lambda n: tensor_f64(tensors[f"blk.{i}.{n}.weight"])
            q_gguf, k_gguf = g("attn_q"), g("attn_k")
            self.layers.append({
                "attn_norm": g("attn_norm"),
                # HF layout (used by the default rotate_half path)
                "q": unpermute_qk(q_gguf, self.n_head),
                "k": unpermute_qk(k_gguf, self.n_kv),
                # GGUF layout (only used for the interleaved cross-check)
                "q_gguf": q_gguf,
                "k_gguf": k_gguf,
                "v": g("attn_v"),
                "o": g("attn_output"),
                "ffn_norm": g("ffn_norm"),
                "gate": g("ffn_gate"),
                "up": g("ffn_up"),
                "down": g("ffn_down"),
            })

    # ---------------------------------------------------------------- pieces
    def rmsnorm(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope_cos_sin(self, seq: int):
        hd = self.head_dim
        inv_freq = 1.0 / (self.theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
        freqs = np.outer(np.arange(seq, dtype=np.float64), inv_freq)   # [seq, hd/2]
        return np.cos(freqs), np.sin(freqs)

    @staticmethod
    def rope_rotate_half(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
        """HF apply_rotary_pos_emb: x*cos + rotate_half(x)*sin, x: [heads, seq, hd]."""
        c = np.concatenate([cos, cos], axis=-1)
        s = np.concatenate([sin, sin], axis=-1)
        half = x.shape[-1] // 2
        rot = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
        return x * c + rot * s

    @staticmethod
    def rope_interleaved(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
        """GPT-J style rotation of adjacent pairs (2j, 2j+1) (cross-check only)."""
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x0 * cos - x1 * sin
        out[..., 1::2] = x0 * sin + x1 * cos
        return out

    # --------------------------------------------------------------- forward
    def forward(self, ids, record_layers=(), interleaved=False, hooks=None):
        """Returns (final residual [seq, d], {layer: act [seq, d_mlp]}); with `hooks` (a
        dict whose keys are layers), also fills hooks[layer] with that block's values at
        the TransformerLens hook points, by hook name."""
        ids = np.asarray(ids, dtype=np.int64)
        seq = len(ids)
        hd, nh, nkv = self.head_dim, self.n_head, self.n_kv
        group = nh // nkv
        cos, sin = self.rope_cos_sin(seq)
        mask = np.triu(np.full((seq, seq), -np.inf), k=1)
        x = self.embed[ids].copy()
        acts = {}
        for li, L in enumerate(self.layers):
            a_in = self.rmsnorm(x, L["attn_norm"])
            if interleaved:
                q = a_in @ L["q_gguf"].T
                k = a_in @ L["k_gguf"].T
                rope = self.rope_interleaved
            else:
                q = a_in @ L["q"].T
                k = a_in @ L["k"].T
                rope = self.rope_rotate_half
            v = a_in @ L["v"].T
            q = q.reshape(seq, nh, hd).transpose(1, 0, 2)     # [nh, seq, hd]
            k = k.reshape(seq, nkv, hd).transpose(1, 0, 2)    # [nkv, seq, hd]
            v = v.reshape(seq, nkv, hd).transpose(1, 0, 2)
            q = rope(q, cos, sin)
            k = rope(k, cos, sin)
            # GQA: query head h uses kv head h // group (repeat_kv semantics)
            k = np.repeat(k, group, axis=0)
            v = np.repeat(v, group, axis=0)
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
            scores -= scores.max(axis=-1, keepdims=True)
            p = np.exp(scores)
            p /= p.sum(axis=-1, keepdims=True)
            attn = (p @ v).transpose(1, 0, 2).reshape(seq, nh * hd)
            attn_out = attn @ L["o"].T
            h = x + attn_out
            m = self.rmsnorm(h, L["ffn_norm"])
            gate = m @ L["gate"].T
            act = gate / (1.0 + np.exp(-gate)) * (m @ L["up"].T)
            if li in record_layers:
                acts[li] = act
            mlp_out = act @ L["down"].T
            if hooks is not None and li in hooks:
                hooks[li] = {
                    "hook_resid_pre": x, "ln2.hook_normalized": self.rmsnorm(h, 1.0),
                    "hook_attn_out": attn_out, "hook_resid_mid": h, "mlp.hook_post": act,
                    "hook_mlp_out": mlp_out, "hook_resid_post": h + mlp_out,
                }
            x = h + mlp_out
        return x, acts

    def logits(self, x_final: np.ndarray) -> np.ndarray:
        return self.rmsnorm(x_final, self.out_norm) @ self.lm_head.T


# --------------------------------------------------------------------------
# Tokenizer (llama.cpp oracle)
# --------------------------------------------------------------------------

def make_tokenizer():
    from llama_cpp import Llama
    llm = Llama(model_path=MODEL_PATH, vocab_only=True, verbose=False)

    def tokenize(text: str):
        return list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def piece(tok_id: int) -> str:
        return llm.detokenize([tok_id]).decode("utf-8", errors="replace")

    return tokenize, piece


def make_hf_style_tokenizer(path: str):
    """Second, independent tokenizer used only as a cross-check of llama.cpp.

    Rebuilds the SmolLM2 Hugging Face tokenizer (byte-level BPE with the
    pre-tokenizer Sequence[Digits(individual_digits=True), ByteLevel]) from the
    vocabulary and merges stored in the GGUF, using the `tokenizers` package.
    Special tokens are deliberately not registered, which matches llama.cpp's
    special=False (e.g. "<|im_start|>" is tokenized as plain text)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    r = GGUFReader(path)
    f = r.fields["tokenizer.ggml.tokens"]
    vocab = {bytes(f.parts[i]).decode("utf-8"): n for n, i in enumerate(f.data)}
    f = r.fields["tokenizer.ggml.merges"]
    merges = [tuple(bytes(f.parts[i]).decode("utf-8").split(" ")) for i in f.data]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    return lambda text: tok.encode(text).ids


def sig7(x: float) -> float:
    """Round to 7 significant digits."""
    return float(f"{x:.7g}")


def write_json(path: str, obj, compact: bool = False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        if compact:
            json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        else:
            json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(path, REPO_ROOT)} ({os.path.getsize(path)} bytes)")


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main():
    tokenize, piece = make_tokenizer()

    # ---- tokenizer fixture ------------------------------------------------
    tok_fixture = []
    for s in TOKENIZER_STRINGS:
        ids = tokenize(s)
        tok_fixture.append({"text": s, "ids": ids})
        print(f"tok {s!r:>45} -> {ids}")
    the_ids = tokenize("The")
    assert the_ids == [504], f"'The' should be [504], got {the_ids}"
    assert tokenize(" The") == [378], tokenize(" The")
    write_json(os.path.join(OUT_DIR, "smollm2_tokenizer.json"), tok_fixture)

    # Cross-check llama.cpp against an HF-style tokenizer rebuilt from the GGUF.
    hf_tokenize = make_hf_style_tokenizer(MODEL_PATH)
    all_strings = TOKENIZER_STRINGS + [t for _, t in TEXTS] + ["The capital of France is"]
    mismatches = [s for s in all_strings if tokenize(s) != hf_tokenize(s)]
    print(f"tokenizer cross-check (llama.cpp vs HF-style BPE): "
          f"{len(all_strings) - len(mismatches)}/{len(all_strings)} strings agree")
    for s in mismatches:
        print(f"  MISMATCH {s!r}: llama.cpp {tokenize(s)} vs HF-style {hf_tokenize(s)}")

    # ---- model ------------------------------------------------------------
    print("loading + dequantizing model (float64) ...")
    model = SmolLM2(MODEL_PATH)
    assert model.bos_id == 1
    bos = model.bos_id

    # ---- sanity: next token after "The capital of France is" ---------------
    prompt = "The capital of France is"
    p_ids = [bos] + tokenize(prompt)
    x, _ = model.forward(p_ids)
    logits = model.logits(x)[-1]
    top = np.argsort(-logits)[:10]
    print(f"next-token top-10 for {prompt!r} (ids {p_ids}):")
    for t in top:
        print(f"  {int(t):6d} {piece(int(t))!r:>14} {logits[t]:.6f}")
    paris = tokenize(" Paris")
    assert len(paris) == 1, paris
    paris_rank = int(np.sum(logits > logits[paris[0]]))
    print(f"' Paris' id {paris[0]} rank {paris_rank}")
    assert paris_rank < 5, "model output is not sane: ' Paris' not in top-5"
    write_json(os.path.join(OUT_DIR, "smollm2_next_token.json"), {
        "generator": GENERATOR,
        "model_file": MODEL_FILE,
        "text": prompt,
        "ids": p_ids,
        "top_ids": [int(t) for t in top],
        "top_logits": [float(logits[t]) for t in top],
        "top_pieces": [piece(int(t)) for t in top],
    })

    # ---- activations ------------------------------------------------------
    texts = []
    for name, text in TEXTS:
        ids = [bos] + tokenize(text)
        n = len(ids) - 1
        assert 10 <= n <= 60, f"text {name!r} has {n} tokens (want 10..60)"
        _, acts = model.forward(ids, record_layers=RECORD_LAYERS)
        texts.append((name, text, ids, acts))
        print(f"text {name:14s} {n:3d} tokens")

    # Cross-check RoPE: un-permuted weights + rotate_half must equal the
    # GGUF-layout weights + interleaved rotation.
    name, _, ids, acts = texts[0]
    xa, _ = model.forward(ids)
    xb, acts_b = model.forward(ids, record_layers=RECORD_LAYERS, interleaved=True)
    max_diff = max(float(np.max(np.abs(acts[l] - acts_b[l]))) for l in RECORD_LAYERS)
    max_resid = float(np.max(np.abs(xa - xb)))
    print(f"rope cross-check on {name!r}: max |act diff| = {max_diff:.3e}, "
          f"max |final residual diff| = {max_resid:.3e}")
    assert max_diff < 1e-9 and max_resid < 1e-8

    # Neuron selection per layer: 8 random (one RandomState(0) shared across
    # layers, drawn in layer order) + top-2 per text by max activation over
    # non-BOS positions; deduplicated and sorted.
    rs = np.random.RandomState(0)
    neurons = {}
    for l in RECORD_LAYERS:
        chosen = set(int(i) for i in rs.choice(model.d_mlp, N_RANDOM_NEURONS, replace=False))
        for _, _, _, acts in texts:
            mx = acts[l][1:].max(axis=0)
            chosen.update(int(i) for i in np.argsort(-mx)[:TOP_PER_TEXT])
        neurons[l] = sorted(chosen)
        print(f"layer {l:2d}: {len(neurons[l])} neurons {neurons[l]}")

    out_texts = []
    for name, text, ids, acts in texts:
        out_texts.append({
            "name": name,
            "text": text,
            "ids": ids,
            "layers": [{
                "layer": l,
                "neurons": neurons[l],
                "activations": [[sig7(a) for a in row[neurons[l]]] for row in acts[l]],
            } for l in RECORD_LAYERS],
        })
    write_json(os.path.join(OUT_DIR, "smollm2_activations.json"), {
        "generator": GENERATOR,
        "model_file": MODEL_FILE,
        "model_sha256": sha256_file(MODEL_PATH),
        "bos_id": bos,
        "texts": out_texts,
    }, compact=True)


if __name__ == "__main__":
    sys.exit(main())
