"""The quickstart notebook runs end to end (nbclient)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import ROOT, SMALL_CORPUS, need_module

NOTEBOOK = ROOT / "python" / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = need_module("nbformat")
    nbclient = need_module("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("N2G_QUICKSTART_CORPUS", str(SMALL_CORPUS))
    monkeypatch.setenv("N2G_DATA", os.environ.get("N2G_DATA", str(ROOT / "data")))
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors
    html = [o for o in outputs if "text/html" in o.get("data", {})]
    assert html, "the examples and the DataFrame show as HTML"
    svg = [o for o in outputs if "image/svg+xml" in o.get("data", {})]
    assert svg, "the neuron's graph shows as its drawing"
    assert "<svg" in "".join(svg[0]["data"]["image/svg+xml"])
