#!/usr/bin/env python3
"""Checks the float64 numpy reference of tiny_families.py against Hugging Face
``transformers`` itself, run in float64 on the same folders.

For every family folder in fixtures/tiny/ written by tiny_families.py, this loads the
checkpoint with ``AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float64,
attn_implementation="eager")``, records the input of every layer's
``mlp.down_proj`` (the neuron activations, TransformerLens ``mlp.hook_post``) and the
logits for the reference texts, and compares them with ``tiny_families.forward`` on
the same float64 weights. The embedding scale is kept in float64 on both sides (the
stored fixtures round it to the checkpoint's dtype, as a model run in that dtype
does; that rounding is the only difference). ``transformers`` computes every RMSNorm
in float32 even in a float64 model (``x.float()`` / ``.to(torch.float32)``) and the
RoPE inverse frequencies in float32, so the two agree to about 1e-6 rather than 1e-15;
the bound checked is 1e-5 (the Rust tests' bound is 1e-4).

Needs torch and transformers (not needed for the fixtures themselves):
    python3 -m venv /tmp/venv-torch && /tmp/venv-torch/bin/pip install numpy torch transformers
    /tmp/venv-torch/bin/python scripts/reference/check_with_transformers.py
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from transformers import AutoModelForCausalLM

import tiny_families as tf

TOL = 1e-5


def check(name: str) -> float:
    folder = os.path.join(tf.OUT_ROOT, name)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    ref = json.load(open(os.path.join(folder, "reference.json")))
    model = AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.float64, attn_implementation="eager")
    model.eval()
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    captured = []
    hooks = [layer.mlp.down_proj.register_forward_hook(
        lambda mod, inp, out: captured.append(inp[0][0].detach().numpy()))
        for layer in model.model.layers]
    worst = 0.0
    for text in ref["texts"]:
        ids = text["ids"]
        captured.clear()
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].numpy()
        ours, our_logits = tf.forward(cfg, state, np.array(ids), "F64")
        for layer, (a, b) in enumerate(zip(captured, ours)):
            rel = np.abs(a - b).max() / np.abs(b).max()
            worst = max(worst, rel)
            assert rel < TOL, f"{name} layer {layer}: {rel:.2e}"
        rel = np.abs(logits - our_logits).max() / np.abs(our_logits).max()
        worst = max(worst, rel)
        assert rel < TOL, f"{name} logits: {rel:.2e}"
    for h in hooks:
        h.remove()
    return worst


def main():
    import transformers
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    for name in tf.FAMILIES:
        print(f"{name}: numpy reference = transformers float64 "
              f"(worst relative difference {check(name):.1e})")


if __name__ == "__main__":
    main()
