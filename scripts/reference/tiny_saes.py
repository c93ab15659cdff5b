"""Tiny random-weight SAEs in the three file layouts n2g-index reads, and their
encoder outputs computed independently in float64 numpy.

Writes fixtures/sae/<name>/ (SAELens folders, Gemma Scope params.npz files,
EleutherAI sparsify folders) and fixtures/sae/inputs.json. Only numpy and
safetensors are needed. Deterministic: run it again and the files are the same.

The encoders follow the libraries' published code:

* SAELens (`sae_lens/saes/*.py`): `sae_in = norm_in(x) - b_dec * apply_b_dec_to_input`,
  `pre = sae_in @ W_enc + b_enc`; standard `relu(pre)`; jumprelu
  `relu(pre) * (pre > threshold)`; topk: `torch.topk(pre, k)`, values ReLU'd,
  scattered into zeros. `norm_in`: constant_norm_rescale `x * sqrt(d_in) / |x|`;
  expected_average_only_in `x * scaling_factor` (SAELens folds that factor into the
  weights: W_enc * s, b_dec / s, which is the same encoder).
* Gemma Scope (the tutorial's JumpReLUSAE): `pre = x @ W_enc + b_enc`,
  `(pre > threshold) * relu(pre)`; no `b_dec` subtracted.
* sparsify (`SparseCoder.encode` + `fused_encoder`): `x - b_dec` unless `transcode`,
  `relu(x @ encoder.weight.T + encoder.bias)`, then the top k.
"""

import json
import os
import shutil

import numpy as np
from safetensors.numpy import save_file

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
OUT = os.path.join(ROOT, "fixtures", "sae")
# The residual width of the tiny test models (fixtures/tiny/*/config.json
# `hidden_size`) and their MLP width (`intermediate_size`).
with open(os.path.join(ROOT, "fixtures", "tiny", "llama", "config.json")) as f:
    _cfg = json.load(f)
D_MODEL = _cfg["hidden_size"]
D_MLP = _cfg["intermediate_size"]
N_INPUTS = 6

rng = np.random.RandomState(20240807)


def sig7(v):
    return float(f"{float(v):.7g}")


def inputs(d):
    # float32 values, so that the Rust side reads exactly these numbers.
    x = rng.normal(0.0, 1.0, size=(N_INPUTS, d)).astype(np.float32)
    x[1] *= 3.0  # norms differ (constant_norm_rescale must rescale per row)
    x[2] *= 0.25
    return x


INPUTS = {D_MODEL: inputs(D_MODEL), D_MLP: inputs(D_MLP)}


def weights(d_in, d_sae, dtype=np.float32):
    w_enc = (rng.normal(0.0, 1.0, size=(d_in, d_sae)) / np.sqrt(d_in)).astype(dtype)
    w_dec = (rng.normal(0.0, 1.0, size=(d_sae, d_in)) / np.sqrt(d_sae)).astype(dtype)
    b_enc = rng.normal(0.0, 0.2, size=d_sae).astype(dtype)
    b_dec = rng.normal(0.0, 0.5, size=d_in).astype(dtype)
    return dict(W_enc=w_enc, W_dec=w_dec, b_enc=b_enc, b_dec=b_dec)


def margin_check(name, pre, cut):
    """No pre-activation within 1e-4 of a cut where the output jumps (a JumpReLU
    threshold), so f32 rounding (about 1e-6 here) cannot flip a latent on or off."""
    gap = np.min(np.abs(pre - cut))
    assert gap > 1e-4, f"{name}: a pre-activation is {gap} from its cut; change the seed"


def encode(name, w, x, *, b_dec_in, norm=None, factor=None, arch="relu", k=None):
    """float64 encoder: returns (acts [n, d_sae], topk sets or None)."""
    w = {key: v.astype(np.float64) for key, v in w.items()}
    x = x.astype(np.float64)
    d_in = x.shape[1]
    if norm == "constant_norm_rescale":
        x = x * (np.sqrt(d_in) / np.linalg.norm(x, axis=-1, keepdims=True))
    elif norm == "expected_average_only_in":
        x = x * factor
    if b_dec_in:
        x = x - w["b_dec"]
    pre = x @ w["W_enc"] + w["b_enc"]
    if arch == "relu":
        return np.maximum(pre, 0.0), None
    if arch == "jumprelu":
        margin_check(name, pre, w["threshold"])
        return np.maximum(pre, 0.0) * (pre > w["threshold"]), None
    assert arch == "topk"
    order = np.argsort(-pre, axis=-1, kind="stable")
    sets = np.sort(order[:, :k], axis=-1)
    kth = np.take_along_axis(pre, order[:, k - 1 : k], -1)
    nxt = np.take_along_axis(pre, order[:, k : k + 1], -1)
    assert np.all(kth - nxt > 1e-4), f"{name}: near tie at the k-th value"
    acts = np.zeros_like(pre)
    np.put_along_axis(acts, sets, np.maximum(np.take_along_axis(pre, sets, -1), 0.0), -1)
    return acts, sets


def fresh(path):
    if os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(path)
    return path


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


SAES = {}


def record(name, rel_path, fmt, hook, x_width, acts, sets, hook_in_file=True):
    SAES[name] = {
        "path": rel_path,
        "format": fmt,
        "hook": hook,
        "hook_in_file": hook_in_file,
        "d_in": x_width,
        "d_sae": int(acts.shape[1]),
        "expected": [[sig7(v) for v in row] for row in acts],
        "topk_sets": None if sets is None else [[int(i) for i in row] for row in sets],
    }


def saelens_standard():
    name, d_sae = "saelens_standard", 96
    w = weights(D_MODEL, d_sae)
    path = fresh(os.path.join(OUT, name))
    # SAELens <= 5 layout: flat hook_name, activation_fn_str.
    cfg = {
        "architecture": "standard",
        "d_in": D_MODEL,
        "d_sae": d_sae,
        "activation_fn_str": "relu",
        "apply_b_dec_to_input": True,
        "finetuning_scaling_factor": False,
        "context_size": 128,
        "model_name": "tiny-llama",
        "hook_name": "blocks.1.hook_resid_pre",
        "hook_layer": 1,
        "hook_head_index": None,
        "prepend_bos": True,
        "dataset_path": "tiny",
        "normalize_activations": "none",
        "dtype": "float32",
        "device": "cpu",
        "sae_lens_training_version": "5.3.0",
    }
    write_json(os.path.join(path, "cfg.json"), cfg)
    save_file(w, os.path.join(path, "sae_weights.safetensors"))
    acts, sets = encode(name, w, INPUTS[D_MODEL], b_dec_in=True)
    record(name, name, "sae_lens", cfg["hook_name"], D_MODEL, acts, sets)


def saelens_jumprelu():
    name, d_sae = "saelens_jumprelu", 112
    w = weights(D_MODEL, d_sae)
    w["threshold"] = rng.uniform(0.05, 0.6, size=d_sae).astype(np.float32)
    path = fresh(os.path.join(OUT, name))
    # SAELens 6 layout: hook under `metadata`.
    cfg = {
        "d_in": D_MODEL,
        "d_sae": d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": False,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {
            "model_name": "tiny-llama",
            "hook_name": "blocks.2.hook_resid_post",
            "hook_head_index": None,
            "prepend_bos": True,
            "context_size": 128,
            "sae_lens_version": "6.5.0",
            "sae_lens_training_version": "6.5.0",
        },
        "architecture": "jumprelu",
    }
    write_json(os.path.join(path, "cfg.json"), cfg)
    save_file(w, os.path.join(path, "sae_weights.safetensors"))
    acts, sets = encode(name, w, INPUTS[D_MODEL], b_dec_in=False, arch="jumprelu")
    record(name, name, "sae_lens", "blocks.2.hook_resid_post", D_MODEL, acts, sets)


def saelens_topk():
    name, d_sae, k = "saelens_topk", 128, 8
    w = weights(D_MODEL, d_sae)
    path = fresh(os.path.join(OUT, name))
    # SAELens 5 layout of a TopK SAE: `standard` with activation_fn topk and k in
    # activation_fn_kwargs.
    cfg = {
        "architecture": "standard",
        "d_in": D_MODEL,
        "d_sae": d_sae,
        "activation_fn_str": "topk",
        "activation_fn_kwargs": {"k": k},
        "apply_b_dec_to_input": True,
        "hook_name": "blocks.0.hook_resid_post",
        "hook_layer": 0,
        "normalize_activations": "none",
        "dtype": "float32",
        "device": "cpu",
    }
    write_json(os.path.join(path, "cfg.json"), cfg)
    save_file(w, os.path.join(path, "sae_weights.safetensors"))
    acts, sets = encode(name, w, INPUTS[D_MODEL], b_dec_in=True, arch="topk", k=k)
    record(name, name, "sae_lens", cfg["hook_name"], D_MODEL, acts, sets)


def saelens_norm_rescale():
    # On the MLP neurons (d_in = intermediate_size).
    name, d_sae = "saelens_norm_rescale", 100
    w = weights(D_MLP, d_sae)
    path = fresh(os.path.join(OUT, name))
    cfg = {
        "architecture": "standard",
        "d_in": D_MLP,
        "d_sae": d_sae,
        "apply_b_dec_to_input": True,
        "normalize_activations": "constant_norm_rescale",
        "hook_name": "blocks.1.mlp.hook_post",
        "dtype": "float32",
    }
    write_json(os.path.join(path, "cfg.json"), cfg)
    save_file(w, os.path.join(path, "sae_weights.safetensors"))
    acts, sets = encode(
        name, w, INPUTS[D_MLP], b_dec_in=True, norm="constant_norm_rescale"
    )
    record(name, name, "sae_lens", cfg["hook_name"], D_MLP, acts, sets)


def saelens_expected_average():
    name, d_sae, factor = "saelens_expected_average", 96, 0.6180339887
    w = weights(D_MODEL, d_sae)
    path = fresh(os.path.join(OUT, name))
    cfg = {
        "architecture": "standard",
        "d_in": D_MODEL,
        "d_sae": d_sae,
        "apply_b_dec_to_input": True,
        "normalize_activations": "expected_average_only_in",
        "metadata": {"hook_name": "blocks.1.hook_mlp_out"},
        "dtype": "float32",
    }
    write_json(os.path.join(path, "cfg.json"), cfg)
    # Where SAELens's trainer saves the estimated factor (ActivationScaler.save).
    write_json(os.path.join(path, "activation_scaler.json"), {"scaling_factor": factor})
    save_file(w, os.path.join(path, "sae_weights.safetensors"))
    acts, sets = encode(
        name,
        w,
        INPUTS[D_MODEL],
        b_dec_in=True,
        norm="expected_average_only_in",
        factor=factor,
    )
    record(name, name, "sae_lens", "blocks.1.hook_mlp_out", D_MODEL, acts, sets)


def gemma_scope(name, d_sae, compressed, dtype):
    w = weights(D_MODEL, d_sae, dtype)
    w["threshold"] = rng.uniform(0.05, 0.6, size=d_sae).astype(dtype)
    path = fresh(os.path.join(OUT, name))
    save = np.savez_compressed if compressed else np.savez
    save(os.path.join(path, "params.npz"), **w)
    acts, sets = encode(name, w, INPUTS[D_MODEL], b_dec_in=False, arch="jumprelu")
    record(
        name,
        f"{name}/params.npz",
        "gemma_scope",
        "blocks.2.hook_resid_post",
        D_MODEL,
        acts,
        sets,
        hook_in_file=False,
    )


def sparsify(name, folder, d_sae, k, transcode, hook, hook_in_file):
    w = weights(D_MODEL, d_sae)
    tensors = {
        "encoder.weight": np.ascontiguousarray(w["W_enc"].T),
        "encoder.bias": w["b_enc"],
        "W_dec": w["W_dec"],
        "b_dec": w["b_dec"],
    }
    path = fresh(os.path.join(OUT, name))
    sub = os.path.join(path, folder)
    os.makedirs(sub)
    cfg = {
        "activation": "topk",
        "expansion_factor": 4,
        "normalize_decoder": True,
        "num_latents": d_sae,
        "k": k,
        "multi_topk": False,
        "skip_connection": False,
        "transcode": transcode,
        "d_in": D_MODEL,
    }
    write_json(os.path.join(sub, "cfg.json"), cfg)
    save_file(tensors, os.path.join(sub, "sae.safetensors"))
    acts, sets = encode(
        name, w, INPUTS[D_MODEL], b_dec_in=not transcode, arch="topk", k=k
    )
    record(name, f"{name}/{folder}", "sparsify", hook, D_MODEL, acts, sets, hook_in_file)


def main():
    saelens_standard()
    saelens_jumprelu()
    saelens_topk()
    saelens_norm_rescale()
    saelens_expected_average()
    gemma_scope("gemma_scope", 104, compressed=False, dtype=np.float32)
    # float16 `<f2` arrays in a deflated archive (Gemma Scope itself is float32, stored).
    gemma_scope("gemma_scope_compressed_f16", 96, compressed=True, dtype=np.float16)
    sparsify("sparsify_topk", "layers.1", 128, 8, False, "blocks.1.hook_resid_post", True)
    # A transcoder of layers.0.mlp reads the MLP's input; the caller names the hook.
    sparsify(
        "sparsify_transcoder", "layers.0.mlp", 120, 6, True, "blocks.0.ln2.hook_normalized", False
    )
    write_json(
        os.path.join(OUT, "inputs.json"),
        {
            "note": "written by scripts/reference/tiny_saes.py; expected: float64 numpy encoder outputs, 7 significant digits",
            "inputs": {str(d): [[float(v) for v in row] for row in x] for d, x in INPUTS.items()},
            "saes": SAES,
        },
    )


if __name__ == "__main__":
    main()
