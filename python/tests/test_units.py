"""Units: a neuron index and a plain model name their MLP neurons as the binary does;
the SAE arguments reach the engine (errors name the SAE file and the argument at
fault); a view of an SAE latent says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

import n2g_index as n2g
from conftest import ROOT, SMALL_CORPUS, assert_same, cli_json

#: SmolLM2-135M's MLP width (`intermediate_size` of its config.json).
SMOLLM2_NEURONS = 1536
#: The units of the default model without an SAE.
NEURON_UNITS: Dict[str, Any] = {"kind": "mlp_neurons", "hook": "mlp.hook_post", "per_layer": SMOLLM2_NEURONS, "sae": None}
MISSING_SAE = "/nonexistent/sae-folder"


@pytest.fixture(scope="module")
def model() -> n2g.Model:
    return n2g.Model()


def test_neuron_index_units_equal_cli(small_index: Path, idx: n2g.Index) -> None:
    info = cli_json("info", "--index", str(small_index))
    assert_same(idx.units, info["units"])
    assert idx.units == NEURON_UNITS
    got = idx.info()
    assert got["max_density"] is None and got["skipped_dense"] == []


def test_neuron_view_names_its_unit_kind(small_index: Path, idx: n2g.Index) -> None:
    want = cli_json("show", "0:3", "--index", str(small_index))
    view = idx.neuron("0:3")
    assert view.unit_kind == want["unit_kind"] == "mlp_neurons"
    assert view.unit == "neuron" and view.graph_skipped is None
    assert repr(view).startswith("NeuronView(neuron 0:3,")


def test_latent_view_says_latent_and_why_it_has_no_graph(small_index: Path) -> None:
    # A neuron's JSON made into a dense SAE latent's: the fields the engine adds then.
    d = cli_json("show", "0:3", "--index", str(small_index))
    del d["graph"], d["eval"]
    d["unit_kind"] = "sae_latents"
    d["graph_skipped"] = "dense: fires on 42.0% of the tokens"
    view = n2g.NeuronView._from(d, True, None)
    assert view.unit == "latent" and view.graph is None
    assert view.graph_skipped == d["graph_skipped"]
    assert "latent 0:3" in repr(view) and "42.0%" in repr(view)


def test_model_units_and_activations_units(model: n2g.Model) -> None:
    assert model.units == NEURON_UNITS
    a = model.activations("Hello there", layer=0, neurons="0-3")
    assert a.units == NEURON_UNITS
    want = cli_json("activations", "--text", "Hello there", "--layer", "0", "--neurons", "0-3")
    assert_same(a.units, want["units"])


def test_neurons_need_a_layer(model: n2g.Model) -> None:
    with pytest.raises(n2g.InvalidArgumentError) as e:
        model.activations("Hello there")
    assert e.value.field == "layer" and "layer" in str(e.value)


def test_missing_sae_is_named() -> None:
    with pytest.raises(n2g.Error) as e:
        n2g.Model(sae=MISSING_SAE)
    assert MISSING_SAE in str(e.value)


@pytest.mark.parametrize("hook", ["blocks.x.bad", "resid_pre", "blocks.1.hook_nothing"])
def test_malformed_hook_is_named(hook: str, tmp_path: Path) -> None:
    with pytest.raises(n2g.InvalidArgumentError) as e:
        n2g.Model(sae=MISSING_SAE, hook=hook)
    assert e.value.field == "hook" and hook in str(e.value)
    with pytest.raises(n2g.InvalidArgumentError) as e:
        n2g.build(tmp_path / "index", corpus=[SMALL_CORPUS], sae=MISSING_SAE, hook=hook, progress=False)
    assert e.value.field == "hook" and hook in str(e.value)


def test_hook_without_sae_is_refused() -> None:
    with pytest.raises(n2g.InvalidArgumentError) as e:
        n2g.Model(hook="blocks.1.hook_resid_pre")
    assert e.value.field == "hook"


def test_build_passes_the_sae_and_max_density(tmp_path: Path) -> None:
    with pytest.raises(n2g.Error) as e:
        n2g.build(tmp_path / "sae", corpus=[SMALL_CORPUS], sae=MISSING_SAE, progress=False)
    assert MISSING_SAE in str(e.value)
    with pytest.raises(n2g.InvalidArgumentError) as d:
        n2g.build(tmp_path / "dense", corpus=[SMALL_CORPUS], max_density=1.5, progress=False)
    assert d.value.field == "max_density"


#: A tiny random Llama and a TopK SAE at its blocks.0.hook_resid_post (fixtures).
TINY_LLAMA = ROOT / "fixtures" / "tiny" / "llama"
TOPK_SAE = ROOT / "fixtures" / "sae" / "saelens_topk"
TEXT = "The fox ran into the village."


@pytest.fixture(scope="module")
def sae_index(tmp_path_factory: pytest.TempPathFactory) -> n2g.Index:
    path = tmp_path_factory.mktemp("sae") / "index"
    return n2g.build(path, model=TINY_LLAMA, sae=TOPK_SAE, corpus=[SMALL_CORPUS],
                     neurons="0-23", progress=False)


def test_sae_index_reads_as_the_binary_reads_it(sae_index: n2g.Index) -> None:
    path = sae_index.path
    assert_same(sae_index.units, cli_json("info", "--index", path)["units"])
    assert sae_index.units["kind"] == "sae_latents"
    assert sae_index.units["hook"] == "blocks.0.hook_resid_post"
    assert sae_index.units["sae"]["d_sae"] == 128
    hits = sae_index.query("layer:0", limit=100)
    want = cli_json("query", "layer:0", "--limit", "100", "--index", path)
    assert [h.neuron for h in hits] == [h["neuron"] for h in want] and hits
    view = sae_index.neuron(hits[0].neuron)
    assert view.unit == "latent" and view.unit_kind == "sae_latents"
    assert repr(view).startswith(f"NeuronView(latent {hits[0].neuron},")


def test_predict_loads_the_index_sae(sae_index: n2g.Index) -> None:
    np = pytest.importorskip("numpy")
    latent = sae_index.query("layer:0", limit=1)[0].neuron
    got = sae_index.predict(latent, TEXT)
    direct = n2g.Model(str(TINY_LLAMA), sae=str(TOPK_SAE)).activations(
        TEXT, neurons=latent.split(":")[1])
    assert direct.layer == 0 and direct.units["kind"] == "sae_latents"
    np.testing.assert_allclose(got.activations, direct.activations[:, 0], rtol=1e-5, atol=1e-6)
