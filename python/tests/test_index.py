"""Every answer of n2g_index.Index equals the `n2g-index` binary's --json on the same
index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import n2g_index as n2g
from conftest import assert_same, cli, cli_json, plain

QUERIES = ["layer:0", "f1>0.3", "any:/e/", "token:#alpha AND NOT any:/e/", "act>0.9 OR token:hope", "token:the"]


def opened(small_index: Path) -> n2g.Index:
    return n2g.Index(small_index)


@pytest.mark.parametrize("query", QUERIES)
def test_query_equals_cli(small_index: Path, query: str) -> None:
    want = cli_json("query", query, "--limit", "50", "--index", str(small_index))
    with opened(small_index) as idx:
        hits = idx.query(query, limit=50)
    assert all(isinstance(h, n2g.Hit) for h in hits)
    assert all(type(p) is tuple for h in hits for p in h.paths)
    assert_same(plain(hits), want)


def test_some_query_has_hits(idx: n2g.Index) -> None:
    assert len(idx.query("layer:0", limit=50)) > 0


def test_query_df_has_the_hits_as_rows(small_index: Path) -> None:
    want = cli_json("query", "layer:0", "--limit", "50", "--index", str(small_index))
    with opened(small_index) as idx:
        df = idx.query_df("layer:0", limit=50)
    assert list(df.columns) == ["neuron", "layer", "index", "score", "f1", "paths"]
    assert all(type(p) is tuple for paths in df["paths"] for p in paths)
    assert_same(plain(df.to_dict("records")), want)


def test_paths_are_hashable_and_left_to_reference_counting(idx: n2g.Index) -> None:
    import gc
    from collections import Counter

    hits = idx.query("layer:0", limit=50)
    paths = [p for h in hits for p in h.paths]
    counts = Counter(paths)  # lists would raise TypeError: unhashable
    assert paths and sum(counts.values()) == len(paths)
    # A tuple of strings can never be in a reference cycle: the collector skips them.
    assert not any(gc.is_tracked(p) for p in paths)
    assert all(gc.is_tracked(h.paths) for h in hits)
    view = idx.neuron(hits[0].neuron)
    assert view.graph is not None
    assert all(type(p) is tuple for p in view.graph.paths)


def test_neuron_equals_cli(small_index: Path) -> None:
    neurons = range(0, 64, 3)
    want = {n: cli_json("show", f"0:{n}", "--index", str(small_index)) for n in neurons}
    with opened(small_index) as idx:
        for n in neurons:
            assert_same(plain(idx.neuron(f"0:{n}")), want[n], f"0:{n}")


def test_neuron_ids_as_tuples_and_example_counts(small_index: Path) -> None:
    want = cli_json("show", "0:3", "--examples", "2", "--index", str(small_index))
    with opened(small_index) as idx:
        assert_same(plain(idx.neuron((0, 3), examples=2)), want)
        assert_same(plain(idx.neuron([0, 3], examples=2)), want)  # type: ignore[arg-type]


def test_neuron_view_shows_in_jupyter(idx: n2g.Index) -> None:
    view = idx.neuron("0:3")
    assert view.graph is not None
    assert len(view.examples) > 0
    page = view.examples._repr_html_()
    assert page.count("<span") >= len(view.examples)
    # Token text is escaped: no raw markup from the corpus gets through.
    for e in view.examples:
        for t in e.tokens:
            if "<" in t:
                assert t not in page or "&lt;" in page


def test_graph_draws_as_the_cli_draws_it(small_index: Path) -> None:
    import xml.etree.ElementTree as ET

    with opened(small_index) as idx:
        view = idx.neuron("0:3")
        assert view.graph is not None
        svg = view.graph.svg()
        assert view.graph._repr_svg_() == svg
        out = cli("show", "0:3", "--format", "svg", "--index", str(small_index))
        assert out.returncode == 0, out.stderr
        assert svg == out.stdout
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg")
        text = " ".join(t for t in root.itertext())
        assert "neuron 0:3" in text
        # A graph made by hand has nothing to draw from: no picture, a clear error.
        loose = n2g.Graph(view.graph.activating, view.graph.context, view.graph.paths, view.graph.path_activations, view.graph.nodes)
        assert loose._repr_svg_() is None
        with pytest.raises(n2g.Error, match="not read from an index"):
            loose.svg()
    with pytest.raises(n2g.Error):
        view.graph.svg()  # the index is closed


def test_similar_equals_cli(small_index: Path) -> None:
    args = ("--top", "5", "--threshold", "0.5", "--index", str(small_index))
    want = {n: cli_json("similar", f"0:{n}", *args) for n in (0, 3, 10)}
    with opened(small_index) as idx:
        for n in want:
            assert_same(plain(idx.similar(f"0:{n}", top=5, threshold=0.5)), want[n])
            df = idx.similar_df((0, n), top=5, threshold=0.5)
            assert_same(plain(df.to_dict("records")), want[n])


def test_similar_all_equals_cli(small_index: Path) -> None:
    want = {t: cli_json("similar", "--all", "--threshold", t, "--index", str(small_index)) for t in ("0.9", "0.3")}
    with opened(small_index) as idx:
        for threshold in want:
            assert_same(plain(idx.similar_all(threshold=float(threshold))), want[threshold])
            assert_same(plain(idx.similar_all_df(float(threshold)).to_dict("records")), want[threshold])


def test_info_equals_cli(small_index: Path) -> None:
    want = cli_json("info", "--index", str(small_index))
    with opened(small_index) as idx:
        assert_same(idx.info(), want)


def test_predict_equals_cli(small_index: Path) -> None:
    text = "The quick brown fox jumps over the lazy dog. 1, 2, 3!"
    want = {n: cli_json("predict", f"0:{n}", "--text", text, "--index", str(small_index)) for n in (0, 3)}
    with opened(small_index) as idx:
        for n in want:
            got = idx.neuron(f"0:{n}").predict(text)
            assert got.activations.dtype.name == "float32"
            assert_same(plain(got), want[n])


def test_the_binary_reads_while_the_package_has_the_index_open(idx: n2g.Index, small_index: Path) -> None:
    # Readers share the index: the package's open index keeps no other reader out.
    mine = plain(idx.query("layer:0", limit=50))
    out = cli("query", "layer:0", "--limit", "50", "--index", str(small_index), "--json")
    assert out.returncode == 0, out.stderr
    assert_same(mine, json.loads(out.stdout))


def test_close(small_index: Path) -> None:
    idx = n2g.Index(small_index)
    assert not idx.closed
    idx.close()
    assert idx.closed and "closed" in repr(idx)
    with pytest.raises(n2g.Error) as e:
        idx.query("layer:0")
    assert "closed" in str(e.value) and e.value.path == str(small_index)
    idx.close()  # a second close does nothing
    with n2g.Index(small_index) as again:
        assert len(again.query("layer:0", limit=5)) > 0
    assert again.closed
