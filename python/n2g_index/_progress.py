"""Progress of a build: a tqdm bar when tqdm is installed (in a terminal and in
Jupyter), else a plain line on stderr."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional, Protocol


class ProgressCallback(Protocol):
    """What ``n2g_index.build(progress=...)`` calls while it runs. An exception raised
    by any method (KeyboardInterrupt included) stops the build at its next checkpoint
    and is raised by ``build``; the work done so far is kept."""

    def start(self, stage: str, unit: str, total: int, done: int) -> None:
        """A stage starts: ``total`` units (``unit``: "tokens", "neurons"), of which
        ``done`` were done by an earlier run."""

    def advance(self, units: int) -> None:
        """``units`` more units of the current stage are done."""

    def finish(self, stage: str, seconds: float) -> None:
        """The current stage has ended (finished or stopped at a checkpoint)."""

    def note(self, text: str) -> None:
        """A line of information: what is being built, what was resumed."""


class Bar:
    """The default progress display of ``n2g_index.build``."""

    def __init__(self) -> None:
        try:
            from tqdm.auto import tqdm  # type: ignore[import-untyped, unused-ignore]
        except ImportError:
            tqdm = None
        self._tqdm: Any = tqdm
        self._bar: Any = None
        self._line: Optional[tuple[str, str, int, int]] = None
        self._last = 0.0

    def start(self, stage: str, unit: str, total: int, done: int) -> None:
        """Opens a bar for ``stage``."""
        if self._tqdm is not None:
            self._bar = self._tqdm(total=total or None, initial=done, desc=stage, unit=f" {unit}", unit_scale=True)
        else:
            self._line = (stage, unit, total, done)
            self._show(force=True)

    def advance(self, units: int) -> None:
        """Moves the bar on."""
        if self._bar is not None:
            self._bar.update(units)
        elif self._line is not None:
            stage, unit, total, done = self._line
            self._line = (stage, unit, total, done + units)
            self._show()

    def finish(self, stage: str, seconds: float) -> None:
        """Closes the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._line is not None:
            self._show(force=True)
            sys.stderr.write(f" ({seconds:.1f} s)\n")
            self._line = None

    def note(self, text: str) -> None:
        """Prints ``text`` on its own line."""
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            sys.stderr.write(text + "\n")

    def _show(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._line is None or (not force and now - self._last < 0.5):
            return
        self._last = now
        stage, unit, total, done = self._line
        share = f" {100.0 * done / total:5.1f}%" if total else ""
        sys.stderr.write(f"\r{stage}: {done}/{total} {unit}{share}")
        sys.stderr.flush()
