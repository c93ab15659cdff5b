"""Bad input and damaged indexes raise n2g_index exceptions with the engine's message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import n2g_index as n2g
from conftest import cli


def test_bad_query_says_where(small_index: Path) -> None:
    query = "token:Paris AND (context:capital"
    out = cli("query", query, "--index", str(small_index))
    with n2g.Index(small_index) as idx, pytest.raises(n2g.QueryError) as e:
        idx.query(query)
    assert isinstance(e.value, n2g.Error) and isinstance(e.value, ValueError)
    assert e.value.query == query
    assert 0 <= e.value.position <= len(query)
    assert f"column {e.value.position + 1}:" in str(e.value)
    # The message is the engine's, as the binary prints it.
    assert out.returncode != 0 and str(e.value) in out.stderr


def test_query_position_counts_characters(idx: n2g.Index) -> None:
    query = "token:é token:ü ("
    with pytest.raises(n2g.QueryError) as e:
        idx.query(query)
    assert f"column {e.value.position + 1}:" in str(e.value)
    assert 0 <= e.value.position <= len(query)


def test_unknown_neuron(idx: n2g.Index) -> None:
    with pytest.raises(n2g.NeuronNotFoundError) as e:
        idx.neuron("5:0")
    assert e.value.neuron == "5:0" and "not in this index" in str(e.value)
    with pytest.raises(n2g.NeuronNotFoundError):
        idx.similar((0, 999))


@pytest.mark.parametrize("bad", ["x", "1:", "-1:3", (1,), (1, 2, 3), 7, (-1, 2)])
def test_malformed_neuron_ids(idx: n2g.Index, bad: object) -> None:
    with pytest.raises(n2g.InvalidArgumentError) as e:
        idx.neuron(bad)  # type: ignore[arg-type]
    assert e.value.field == "neuron"


def test_missing_index(tmp_path: Path) -> None:
    with pytest.raises(n2g.IndexNotFoundError) as e:
        n2g.Index(tmp_path / "none")
    assert isinstance(e.value, FileNotFoundError)
    assert e.value.path is not None and e.value.path.endswith("store.redb")


def test_damaged_store_names_the_file(small_index: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(small_index, damaged)
    store = damaged / "store.redb"
    data = bytearray(store.read_bytes())
    needle = b"fortunes/wisdom"
    at = data.find(needle)
    assert at >= 0
    while at >= 0:
        data[at + len(needle) - 1] ^= 1
        at = data.find(needle, at + 1)
    store.write_bytes(bytes(data))
    with pytest.raises(n2g.IndexDamagedError) as e:
        n2g.Index(damaged)
    assert e.value.path == str(store)
    assert "store.redb" in str(e.value)


def test_damaged_search_index(small_index: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "search"
    shutil.copytree(small_index, damaged)
    metas = list(damaged.glob("search/**/tantivy/meta.json"))
    assert metas
    for m in metas:
        m.write_text("{ not json")
    with pytest.raises(n2g.IndexDamagedError) as e:
        n2g.Index(damaged).query("layer:0")
    assert e.value.path is not None and "reindex" in str(e.value)


def test_bad_model_arguments() -> None:
    m = n2g.Model()
    with pytest.raises(n2g.InvalidArgumentError) as e:
        m.activations("hello", layer=99)
    assert e.value.field == "layer"
    with pytest.raises(n2g.InvalidArgumentError):
        m.activations("", layer=0, bos=False)
    with pytest.raises(n2g.ModelError):
        n2g.Model(Path(__file__))
    with pytest.raises(n2g.Error):
        n2g.Model(device="nodevice")
