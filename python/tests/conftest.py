"""Shared fixtures: a small index built by the `n2g-index` binary, and its `--json`
answers, which every Python result is compared with."""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator, List, NoReturn

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
#: One fortune file of the default corpus: a build on it takes seconds.
SMALL_CORPUS = ROOT / "data" / "corpus" / "fortunes" / "wisdom"
#: The neurons of layer 0 the small index covers.
NEURONS = "0-63"


def cannot_run(reason: str) -> NoReturn:
    """Skips the test for want of something outside it, or fails it under
    N2G_PYTHON_STRICT=1 (scripts/test-python, and so CI), where every test must run."""
    if os.environ.get("N2G_PYTHON_STRICT") == "1":
        pytest.fail(f"{reason} (N2G_PYTHON_STRICT=1: every test must run)", pytrace=False)
    pytest.skip(reason)


def need_module(name: str) -> Any:
    """The module `name`, or :func:`cannot_run` when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        cannot_run(f"the Python module {name} is not installed")


def binary() -> Path:
    """The `n2g-index` binary (scripts/test-python sets N2G_BIN)."""
    path = Path(os.environ.get("N2G_BIN", ROOT / "target" / "release" / "n2g-index"))
    if not path.exists():
        cannot_run(f"no n2g-index binary at {path}: cargo build --release")
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Runs the binary in the repository root."""
    return subprocess.run([str(binary()), *args], cwd=ROOT, capture_output=True, text=True)


def cli_json(*args: str) -> Any:
    """The JSON the binary prints for `args` (with --json added)."""
    out = cli(*args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def small_build_args(index: Path, *extra: str, neurons: str = NEURONS) -> List[str]:
    """`n2g-index build` of `neurons` of layer 0 on SMALL_CORPUS into `index`."""
    return ["build", "--corpus", str(SMALL_CORPUS), "--layers", "0", "--neurons", neurons, "--quiet", *extra, "--index", str(index)]


@pytest.fixture(scope="package")
def small_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small complete index, built by the binary."""
    if not SMALL_CORPUS.exists():
        cannot_run("no default corpus: run scripts/setup")
    index = tmp_path_factory.mktemp("cli") / "index"
    out = cli(*small_build_args(index))
    assert out.returncode == 0, out.stderr
    return index


@pytest.fixture
def idx(small_index: Path) -> Iterator[Any]:
    """The small index opened by the package for one test, closed after it."""
    import n2g_index as n2g

    index = n2g.Index(small_index)
    yield index
    index.close()


def plain(value: Any) -> Any:
    """A Python answer as JSON-shaped data: dataclasses as dicts of their public fields
    (None and empty example lists left out, as the JSON leaves them out), NumPy arrays
    as lists."""
    if hasattr(value, "__dataclass_fields__"):
        out: Dict[str, Any] = {}
        for name in value.__dataclass_fields__:
            if name.startswith("_"):
                continue
            v = getattr(value, name)
            if v is None or (name == "examples" and len(v) == 0):
                continue
            out[name] = plain(v)
        return out
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def assert_same(got: Any, want: Any, where: str = "$") -> None:
    """`got` equals the JSON `want`; floats equal once both are rounded to float32 (the
    JSON prints an f32 by its shortest decimal, Python holds its exact value)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{where}: {got!r} is not an object"
        assert sorted(got) == sorted(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list), f"{where}: {got!r} is not a list"
        assert len(got) == len(want), f"{where}: {len(got)} items != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, float) or isinstance(got, float):
        assert isinstance(got, (int, float)) and not isinstance(got, bool), f"{where}: {got!r}"
        same = got == want or np.float32(got) == np.float32(want) or (math.isnan(got) and math.isnan(want))
        assert same, f"{where}: {got!r} != {want!r}"
    else:
        assert got == want and type(got) is type(want), f"{where}: {got!r} != {want!r}"
