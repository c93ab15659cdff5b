#!/usr/bin/env python3
"""Float64 values at every TransformerLens hook point of the tiny models.

For each tiny Hugging Face model of ``tiny_models.py`` (llama, gpt2, gpt_neox) and
``tiny_families.py`` (gemma, gemma2, qwen2, qwen3, mistral) this writes
fixtures/tiny/<model>/hooks.json: for the first ``N_TOKENS`` ids of the first two
reference texts, the value of every hook point at layers 0 and 2 (the last), from the
same independent numpy forward passes that write the models' reference.json:

* ``hook_resid_pre``: the residual stream entering the block;
* ``ln2.hook_normalized``: the MLP norm's input normalized, before the norm's learned
  scale (and bias), as TransformerLens gives it with its default weight folding:
  ``x / sqrt(mean(x^2) + eps)`` (RMSNorm), ``(x - mean) / sqrt(var + eps)`` (LayerNorm);
  for GPT-NeoX's parallel residual the norm reads the block input;
* ``hook_attn_out``: the attention output before the residual add (with o/c_proj/dense
  bias; after Gemma 2's post-attention norm);
* ``hook_resid_mid``: after the attention add (none for GPT-NeoX's parallel residual);
* ``mlp.hook_post``: the MLP neurons;
* ``hook_mlp_out``: the MLP output before the residual add (with the down-projection
  bias; after Gemma 2's post-feed-forward norm);
* ``hook_resid_post``: the residual stream leaving the block.

The weights are rebuilt with the generating scripts' own functions and seeds from the
fixtures' config.json (they are deterministic); the ids are those of reference.json. The
script asserts that the recomputed neurons equal reference.json's, so both files
describe the same model.

Run from the repository root:  python3 scripts/reference/tiny_hooks.py
"""

from __future__ import annotations

import json
import os

import numpy as np

import tiny_families
import tiny_models
from tiny_models import sig7

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_ROOT = os.path.join(REPO_ROOT, "fixtures", "tiny")
GENERATOR = "scripts/reference/tiny_hooks.py"

LAYERS = [0, 2]
N_TEXTS = 2
N_TOKENS = 10  # longer than the families' 4-token sliding window


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def tiny_models_runner(name):
    """`forward(ids, record) -> neurons` of a tiny_models.py model."""
    _, make_w, forward = tiny_models.ARCHS[name]
    cfg = read_json(os.path.join(OUT_ROOT, name, "config.json"))
    rs = np.random.RandomState(tiny_models.SEEDS[name])
    w64 = {k: np.asarray(v, dtype=np.float32).astype(np.float64)
           for k, v in make_w(cfg, rs).items()}
    return lambda ids, record: forward(cfg, w64, ids, record)


def tiny_families_runner(name):
    """`forward(ids, record) -> neurons` of a tiny_families.py model."""
    _, dtype, _, _, seed = tiny_families.FAMILIES[name]
    cfg = read_json(os.path.join(OUT_ROOT, name, "config.json"))
    w64 = {k: tiny_families.store(v, dtype)[2]
           for k, v in tiny_families.build_weights(cfg, seed).items()}
    return lambda ids, record: tiny_families.forward(cfg, w64, ids, dtype, record)[0]


def rounded(a):
    return [[sig7(v) for v in row] for row in a]


def model_hooks(name, run):
    """The hooks.json content of one model."""
    reference = read_json(os.path.join(OUT_ROOT, name, "reference.json"))
    texts = []
    for entry in reference["texts"][:N_TEXTS]:
        # The neurons of the whole text equal reference.json's: the same model.
        full = run(np.array(entry["ids"]), None)
        for layer in entry["layers"]:
            assert rounded(full[layer["layer"]]) == layer["activations"], name
        ids = entry["ids"][:N_TOKENS]
        record = []
        run(np.array(ids), record)
        hooks = {}
        for layer in LAYERS:
            for hook, value in record[layer].items():
                if value is not None:
                    assert value.shape[0] == len(ids)
                    hooks[f"blocks.{layer}.{hook}"] = rounded(value)
        texts.append({"text": entry["text"], "ids": ids, "hooks": hooks})
    return {"generator": GENERATOR, "model": name, "layers": LAYERS, "texts": texts}


def main():
    runners = [(n, tiny_models_runner) for n in tiny_models.ARCHS]
    runners += [(n, tiny_families_runner) for n in tiny_families.FAMILIES]
    for name, make in runners:
        path = os.path.join(OUT_ROOT, name, "hooks.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(model_hooks(name, make(name)), f, ensure_ascii=False,
                      separators=(",", ":"))
            f.write("\n")
        size = os.path.getsize(path)
        print(f"{name}: {size} bytes")
        assert size < 150_000, "keep the fixture small"


if __name__ == "__main__":
    main()
