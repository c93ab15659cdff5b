"""Model.activations against the float64 reference of fixtures/reference/ (computed by
scripts/reference/ with numpy, never by this engine) and the binary's --json."""

from __future__ import annotations

import json

import numpy as np
import pytest

import n2g_index as n2g
from conftest import ROOT, assert_same, cli_json, plain

REFERENCE = ROOT / "fixtures" / "reference" / "smollm2_activations.json"


@pytest.fixture(scope="module")
def model() -> n2g.Model:
    return n2g.Model()


def test_activations_match_the_float64_reference(model: n2g.Model) -> None:
    reference = json.loads(REFERENCE.read_text())
    checked = 0
    for text in reference["texts"]:
        for layer in text["layers"]:
            neurons = layer["neurons"]
            a = model.activations(text["text"], layer=layer["layer"], neurons=neurons)
            assert a.ids == text["ids"], text["name"]
            assert a.bos and a.neurons == neurons
            assert a.activations.dtype == np.float32
            assert a.activations.shape == (len(text["ids"]), len(neurons))
            assert a.activations.flags["C_CONTIGUOUS"]
            want = np.asarray(layer["activations"], dtype=np.float64)
            got = a.activations.astype(np.float64)
            # Per neuron: the largest error within 1e-3 of the trace's largest value
            # (the tolerance of tests/model_reference.rs), and the same top token.
            scale = np.maximum(np.abs(want).max(axis=0), 1e-6)
            rel = np.abs(got - want).max(axis=0) / scale
            assert (rel <= 1e-3).all(), (text["name"], layer["layer"], rel.max())
            assert (got.argmax(axis=0) == want.argmax(axis=0)).all()
            checked += len(neurons)
    assert checked > 100


def test_all_neurons_and_selections(model: n2g.Model) -> None:
    text = "Hello, world. The cat sat on the mat."
    full = model.activations(text, layer=1)
    info = model.info()
    assert full.activations.shape == (len(full.ids), info["n_neurons"])
    some = model.activations(text, layer=1, neurons="5,7-9")
    assert some.neurons == [5, 7, 8, 9]
    assert np.array_equal(some.activations, full.activations[:, [5, 7, 8, 9]])
    listed = model.activations(text, layer=1, neurons=[9, 5])
    assert listed.neurons == [9, 5]
    assert np.array_equal(listed.activations, full.activations[:, [9, 5]])


def test_activations_equal_cli(model: n2g.Model) -> None:
    text = "It was the best of times, it was the worst of times."
    for bos in (True, False):
        args = ["activations", "--text", text, "--layer", "2", "--neurons", "0-31"]
        want = cli_json(*args, *([] if bos else ["--no-bos"]))
        got = model.activations(text, layer=2, neurons="0-31", bos=bos)
        assert_same(plain(got), want)


SPECIAL = ROOT / "fixtures" / "reference" / "smollm2_special_tokens.json"


@pytest.fixture(scope="module")
def literal() -> n2g.Model:
    return n2g.Model(literal_special=True)


def test_special_tokens_as_the_tokenizers_library_reads_them(model: n2g.Model, literal: n2g.Model) -> None:
    # The ids of the `tokenizers` library (scripts/reference/special_tokens.py), without
    # BOS: special tokens as their one id by default, as characters with literal_special.
    for case in json.loads(SPECIAL.read_text()):
        got = model.activations(case["text"], layer=0, neurons="0", bos=False)
        assert got.ids == case["ids"], case["text"]
        got = literal.activations(case["text"], layer=0, neurons="0", bos=False)
        assert got.ids == case["literal_ids"], case["text"]


def test_literal_special_equals_cli(model: n2g.Model, literal: n2g.Model) -> None:
    text = "<|im_start|>user\nHi there<|im_end|>"
    for flags, m in (([], model), (["--literal-special"], literal)):
        want = cli_json("activations", "--text", text, "--layer", "1", "--neurons", "0-7", *flags)
        assert_same(plain(m.activations(text, layer=1, neurons="0-7")), want)
