"""The cost of the Python layer: `Index.query` beside the library's own `Index::query`
on the same index, and a `query_df` of 10,000 hits.

    python benches/python_layer.py      (with the package installed: pip install ./python)

Environment:
    N2G_BENCH_INDEX     an index folder to query (default: a small one built with the
                        `n2g-index` binary into a temporary folder)
    N2G_BENCH_NEURONS   neurons of layer 0 in that default index (default 64)
    N2G_BENCH_DF_ROWS   rows of the query_df measurement (default 10,000)
    N2G_BIN             the binary (default target/release/n2g-index)

The layer's cost is the conversion of each hit to Python objects: it grows with the
hits a call returns, not with the size of the index. An index with fewer neurons than
N2G_BENCH_DF_ROWS gives the DataFrame measurement its real hits repeated up to that
many rows, converted the same way.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, List, Tuple

import n2g_index as n2g

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["layer:0", "f1>0.3", "any:/e/", "token:#alpha AND NOT any:/e/", "act>0.9 OR token:hope", "token:the"]


def paired(library: Callable[[], float], f: Callable[[], Any], repeats: int) -> Tuple[float, float, float]:
    """Medians over `repeats` pairs of (the library's own seconds, as `library` reports
    them; the seconds of one call of `f`; `f`'s seconds less the library's of the same
    pair). The pairs alternate, so a change of machine load hits both alike. What `f`
    returns is freed after its clock stops: a caller keeps its answer."""
    f()
    libs, fulls, added = [], [], []
    for _ in range(repeats):
        lib = library()
        t = time.perf_counter()
        answer = f()
        full = time.perf_counter() - t
        del answer
        libs.append(lib)
        fulls.append(full)
        added.append(full - lib)
    return statistics.median(libs), statistics.median(fulls), statistics.median(added)


def cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def index_folder() -> Path:
    given = os.environ.get("N2G_BENCH_INDEX")
    if given:
        return Path(given)
    neurons = int(os.environ.get("N2G_BENCH_NEURONS", "64"))
    binary = os.environ.get("N2G_BIN", str(ROOT / "target" / "release" / "n2g-index"))
    folder = Path(tempfile.mkdtemp()) / "index"
    corpus = ROOT / "data" / "corpus" / "fortunes" / "wisdom"
    args = [binary, "build", "--corpus", str(corpus), "--layers", "0", "--neurons", f"0-{neurons - 1}", "--quiet", "--index", str(folder)]
    subprocess.run(args, check=True, cwd=ROOT)
    return folder


def main() -> None:
    folder = index_folder()
    idx = n2g.Index(folder)
    print(f"# python layer · {time.strftime('%Y-%m-%d')} · {cpu()} · Python {sys.version.split()[0]} · index {folder}")
    print(f"{'query':<40} {'hits':>5} {'library ms':>11} {'Hit list ms':>12} {'added ms':>9}")
    added: List[float] = []
    for q in QUERIES:
        limit = 20
        hits = len(idx.query(q, limit))
        lib, full, more = paired(lambda: idx._native._time_query(q, limit, 1), lambda: idx.query(q, limit), 300)
        added.append(more)
        print(f"{q:<40} {hits:>5} {lib * 1e3:>11.4f} {full * 1e3:>12.4f} {more * 1e3:>9.4f}")
    print(f"added per call (median of paired differences): median {statistics.median(added) * 1e3:.4f} ms, max {max(added) * 1e3:.4f} ms (goal <= 0.1 ms)")

    import pandas as pd

    rows_wanted = int(os.environ.get("N2G_BENCH_DF_ROWS", "10000"))
    real = idx._native.query_columns("layer:0", rows_wanted)
    count = len(real["neuron"])
    if not count:
        print("no hits for layer:0: no DataFrame measurement")
        return
    # The conversion alone, timed inside the extension on one library result (the
    # library's own query of 10,000 hits varies by more than the conversion costs).
    convert = idx._native._time_conversion("layer:0", rows_wanted, 21, True)
    as_dicts = idx._native._time_conversion("layer:0", rows_wanted, 21, False)
    per_hit = convert / count
    print(f"conversion of {count} hits: by column {convert * 1e3:.2f} ms, as a list of dicts (query) {as_dicts * 1e3:.2f} ms")
    columns = ["neuron", "layer", "index", "score", "f1", "paths"]
    data = {c: [real[c][i % count] for i in range(rows_wanted)] for c in columns}
    _, frame, _ = paired(lambda: 0.0, lambda: pd.DataFrame(data, columns=columns), 20)
    total = per_hit * rows_wanted + frame
    print(
        f"query_df of {rows_wanted} hits: conversion {per_hit * 1e6:.2f} µs/hit "
        f"({per_hit * rows_wanted * 1e3:.2f} ms) + DataFrame {frame * 1e3:.2f} ms = {total * 1e3:.2f} ms (goal <= 50 ms; "
        f"{count} real hits{' repeated' if count < rows_wanted else ''})"
    )
    # The peer: parsing the same hits from the command line's --json with the standard
    # library (what a notebook without this package does after running the binary).
    import json

    text = json.dumps(idx._native.query("layer:0", rows_wanted))
    _, parse, _ = paired(lambda: 0.0, lambda: json.loads(text), 21)
    print(f"json.loads of the same {count} hits as JSON ({len(text) / 1e6:.1f} MB): {parse * 1e3:.2f} ms")
    if count >= rows_wanted:
        # End to end, the answer kept until the clock stops: what a caller waits for,
        # page faults of new memory and garbage-collector passes included.
        library = lambda: idx._native._time_query("layer:0", rows_wanted, 1)  # noqa: E731
        for name, call in (("query_df", idx.query_df), ("query", idx.query)):
            lib, full, more = paired(library, lambda: call("layer:0", rows_wanted), 20)
            print(f"{name}(\"layer:0\", {rows_wanted}) end to end: {full * 1e3:.2f} ms, of which the library's query {lib * 1e3:.2f} ms: {more * 1e3:.2f} ms added")
    idx.close()


if __name__ == "__main__":
    main()
