"""n2g_index.build: the same index as the binary's build, stopped by Ctrl-C or by its
progress object at a checkpoint, and resumed by calling it again."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import List, Tuple

import pytest

import n2g_index as n2g
from conftest import SMALL_CORPUS, assert_same, cli, cli_json, plain, small_build_args

#: Fewer neurons than the shared index: these tests build several times.
NEURONS = "0-15"
OPTIONS = dict(corpus=[SMALL_CORPUS], layers="0", neurons=NEURONS, batch_size=4, checkpoint_every=1)


class Recorder:
    """A progress object that records its calls and raises KeyboardInterrupt once
    `stop_after` units of the scan are done."""

    def __init__(self, stop_after: int = -1) -> None:
        self.calls: List[Tuple[object, ...]] = []
        self.scanned = 0
        self.stop_after = stop_after

    def start(self, stage: str, unit: str, total: int, done: int) -> None:
        self.calls.append(("start", stage, unit, total, done))

    def advance(self, units: int) -> None:
        self.calls.append(("advance", units))
        self.scanned += units
        if 0 <= self.stop_after <= self.scanned:
            self.stop_after = -1
            raise KeyboardInterrupt

    def finish(self, stage: str, seconds: float) -> None:
        self.calls.append(("finish", stage))

    def note(self, text: str) -> None:
        self.calls.append(("note", text))


def compare_with_cli(index: Path, cli_index: Path) -> None:
    with n2g.Index(index) as idx:
        for q in ("layer:0", "f1>0.3"):
            want = cli_json("query", q, "--limit", "50", "--index", str(cli_index))
            assert_same(plain(idx.query(q, limit=50)), want)
        for n in (0, 5, 15):
            want = cli_json("show", f"0:{n}", "--index", str(cli_index))
            assert_same(plain(idx.neuron((0, n))), want)


def test_interrupted_build_resumes_to_the_cli_index(tmp_path: Path) -> None:
    index = tmp_path / "index"
    first = Recorder(stop_after=1)
    with pytest.raises(KeyboardInterrupt) as e:
        n2g.build(index, progress=first, **OPTIONS)  # type: ignore[arg-type]
    assert "resume" in str(e.value)
    assert ("finish", "scan") in first.calls
    # Stopped at a checkpoint: the index opens, the scan is partial, no search yet.
    partial = n2g.Index(index)
    progress = partial.info()["progress"]
    assert 0 < progress["batches_done"] < progress["batches_total"]
    with pytest.raises(n2g.IndexIncompleteError):
        partial.query("layer:0")
    partial.close()  # the build writes the folder again
    # The same call resumes where it stopped.
    second = Recorder()
    n2g.build(index, progress=second, **OPTIONS)  # type: ignore[arg-type]
    starts = [c for c in second.calls if c[0] == "start"]
    assert starts[0][1] == "scan" and int(str(starts[0][4])) > 0, starts
    assert any("resuming" in str(c[1]) for c in second.calls if c[0] == "note")
    # The binary's build with the same settings gives the same answers.
    cli_index = tmp_path / "cli"
    out = cli(*small_build_args(cli_index, "--batch-size", "4", "--checkpoint-every", "1", neurons=NEURONS))
    assert out.returncode == 0, out.stderr
    compare_with_cli(index, cli_index)


def test_ctrl_c_stops_at_a_checkpoint(tmp_path: Path) -> None:
    index = tmp_path / "index"
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            # No progress object: only the engine's checkpoints see the signal.
            n2g.build(index, progress=False, **OPTIONS)  # type: ignore[arg-type]
    finally:
        timer.cancel()
    n2g.build(index, progress=False, **OPTIONS)  # type: ignore[arg-type]
    assert len(n2g.Index(index).query("layer:0", limit=50)) > 0


def test_default_bar_prints_a_plain_line_without_tqdm(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    n2g.build(tmp_path / "index", progress=True, scan_only=True, **OPTIONS)  # type: ignore[arg-type]
    err = capfd.readouterr().err
    assert "scan" in err and "tokens" in err


def test_bad_options_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(n2g.InvalidArgumentError) as e:
        n2g.build(tmp_path / "x", corpus=[SMALL_CORPUS], top_k=0, progress=False)
    assert e.value.field == "top_k"
    with pytest.raises(n2g.InvalidArgumentError) as e:
        n2g.build(tmp_path / "x", corpus=[SMALL_CORPUS], layers="99", progress=False)


def test_merged_shards_equal_the_clis_single_build(tmp_path: Path) -> None:
    # Layers 1 and 2 of 16 neurons, in two bands of neighbouring layers (0-1 and 2-3),
    # are two blocks of one graph chunk: one a shard.
    options = dict(corpus=[SMALL_CORPUS], layers="1-2", neurons="0-15", progress=False)
    shards = [tmp_path / f"shard{i}" for i in range(2)]
    for i, d in enumerate(shards):
        n2g.build(d, shard=f"{i}/2", **options).close()  # type: ignore[arg-type]
    with pytest.raises(n2g.IncompatibleIndexError, match="missing shards: 1/2"):
        n2g.merge(shards[:1], tmp_path / "half", progress=False)
    with pytest.raises(n2g.Error, match="shard"):
        n2g.build(tmp_path / "bad", shard="2/2", **options)  # type: ignore[arg-type]
    merged = n2g.merge(shards, tmp_path / "merged", progress=False)
    cli_index = tmp_path / "cli"
    args = ["--corpus", str(SMALL_CORPUS), "--layers", "1-2", "--neurons", "0-15"]
    out = cli("build", *args, "--quiet", "--index", str(cli_index))
    assert out.returncode == 0, out.stderr
    with merged:
        for q in ("layer:1", "layer:2", "f1>0.3"):
            want = cli_json("query", q, "--limit", "100", "--index", str(cli_index))
            assert_same(plain(merged.query(q, limit=100)), want)
        for n in ("1:0", "1:15", "2:0", "2:15"):
            want = cli_json("show", n, "--index", str(cli_index))
            assert_same(plain(merged.neuron(n)), want)
