#!/usr/bin/env python3
"""Float64 values at the TransformerLens hook points of one block of SmolLM2-135M-Instruct.

Uses the float64 forward pass of ``smollm2_reference.py`` (weights dequantized with the
``gguf`` package, Hugging Face semantics) on the ids of two texts of
fixtures/reference/smollm2_activations.json (llama.cpp's ids, BOS first), cut to their
first ``N_TOKENS`` tokens, and writes fixtures/reference/smollm2_hooks.json: for layer
``LAYER`` and each hook point, the first ``N_DIMS`` of the 576 dimensions at every
position (7 significant digits) and the Euclidean norm of each whole vector.
``ln2.hook_normalized`` is the MLP norm's input before the norm's scale,
``h / sqrt(mean(h^2) + eps)``. The script first asserts that the same forward pass
reproduces the neurons recorded in smollm2_activations.json.

Run from the repository root:
    python3 scripts/reference/smollm2_hooks.py   # needs data/models/SmolLM2-135M-Instruct.Q4_1.gguf
"""

from __future__ import annotations

import json
import os

import numpy as np

from smollm2_reference import MODEL_FILE, MODEL_PATH, OUT_DIR, SmolLM2, sha256_file, sig7, write_json

GENERATOR = "scripts/reference/smollm2_hooks.py"
LAYER = 3
TEXTS = ["prose", "python_code"]
N_TOKENS = 12
N_DIMS = 64
HOOKS = ["hook_resid_pre", "ln2.hook_normalized", "hook_attn_out", "hook_resid_mid",
         "hook_mlp_out", "hook_resid_post"]


def main():
    with open(os.path.join(OUT_DIR, "smollm2_activations.json"), encoding="utf-8") as f:
        activations = json.load(f)
    model = SmolLM2(MODEL_PATH)
    texts = []
    for entry in activations["texts"]:
        if entry["name"] not in TEXTS:
            continue
        layers = [l["layer"] for l in entry["layers"]]
        _, acts = model.forward(entry["ids"], record_layers=layers)
        for l in entry["layers"]:
            got = [[sig7(a) for a in row[l["neurons"]]] for row in acts[l["layer"]]]
            assert got == l["activations"], f"{entry['name']} layer {l['layer']}"
        ids = entry["ids"][:N_TOKENS]
        hooks = {LAYER: None}
        model.forward(ids, hooks=hooks)
        texts.append({
            "name": entry["name"],
            "ids": ids,
            "hooks": {f"blocks.{LAYER}.{h}": {
                "values": [[sig7(v) for v in row[:N_DIMS]] for row in hooks[LAYER][h]],
                "norms": [sig7(n) for n in np.linalg.norm(hooks[LAYER][h], axis=-1)],
            } for h in HOOKS},
        })
    write_json(os.path.join(OUT_DIR, "smollm2_hooks.json"), {
        "generator": GENERATOR,
        "model_file": MODEL_FILE,
        "model_sha256": sha256_file(MODEL_PATH),
        "layer": LAYER,
        "dims": N_DIMS,
        "texts": texts,
    }, compact=True)


if __name__ == "__main__":
    main()
