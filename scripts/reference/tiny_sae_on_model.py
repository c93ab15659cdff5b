"""The latents of an SAE on a model, end to end, in float64 numpy.

Reads the tiny Llama's float64 hook values (`fixtures/tiny/llama/hooks.json`, written by
`tiny_hooks.py`) at `blocks.2.hook_resid_post` and encodes them with the SAELens JumpReLU
SAE of `fixtures/sae/saelens_jumprelu` (written by `tiny_saes.py`) as SAELens does:
`relu(pre) * (pre > threshold)`, `pre = x @ W_enc + b_enc` (no `b_dec` subtracted: the
SAE's `apply_b_dec_to_input` is false). Writes
`fixtures/sae/tiny_llama_jumprelu_latents.json`: per text its ids, the pre-activations
and the latents (7 significant digits).
"""

import json
import os

import numpy as np
from safetensors.numpy import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOOK = "blocks.2.hook_resid_post"


def sig7(v):
    return float(f"{float(v):.7g}")


def main():
    sae_dir = os.path.join(ROOT, "fixtures/sae/saelens_jumprelu")
    cfg = json.load(open(os.path.join(sae_dir, "cfg.json")))
    assert cfg["metadata"]["hook_name"] == HOOK and not cfg["apply_b_dec_to_input"]
    w = {k: v.astype(np.float64) for k, v in load_file(os.path.join(sae_dir, "sae_weights.safetensors")).items()}
    hooks = json.load(open(os.path.join(ROOT, "fixtures/tiny/llama/hooks.json")))
    texts = []
    for t in hooks["texts"]:
        x = np.array(t["hooks"][HOOK], dtype=np.float64)
        pre = x @ w["W_enc"] + w["b_enc"]
        acts = np.maximum(pre, 0.0) * (pre > w["threshold"])
        texts.append(
            {
                "ids": t["ids"][: len(x)],
                "pre": [[sig7(v) for v in row] for row in pre],
                "latents": [[sig7(v) for v in row] for row in acts],
            }
        )
    out = {
        "generator": "scripts/reference/tiny_sae_on_model.py",
        "model": "fixtures/tiny/llama",
        "sae": "fixtures/sae/saelens_jumprelu",
        "hook": HOOK,
        "threshold": [sig7(v) for v in w["threshold"]],
        "texts": texts,
    }
    with open(os.path.join(ROOT, "fixtures/sae/tiny_llama_jumprelu_latents.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
