"""The exceptions of n2g_index: every engine error is one of these, with the engine's
message and attributes that say what is at fault."""

from __future__ import annotations

from typing import Optional


class Error(Exception):
    """Base class of every n2g_index error.

    Attributes:
        message: the engine's message (also ``str(error)``).
        path: the file or folder at fault, when there is one.
    """

    def __init__(self, message: str, *, path: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class QueryError(Error, ValueError):
    """A search query that does not parse (grammar: ``schema/QUERY.md``).

    Attributes:
        query: the query text.
        position: the character offset in ``query`` where parsing failed.
        reason: what went wrong or what was expected there.
    """

    def __init__(self, message: str, *, query: str = "", position: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.query = query
        self.position = position
        self.reason = reason


class NeuronNotFoundError(Error, LookupError):
    """A neuron that the index does not cover (or has not scanned yet).

    Attributes:
        neuron: the neuron asked for, as ``"L:N"``.
    """

    def __init__(self, message: str, *, neuron: Optional[str] = None) -> None:
        super().__init__(message)
        self.neuron = neuron


class InvalidArgumentError(Error, ValueError):
    """An argument whose value cannot work (a layer out of range, a bad neuron id, a
    text with no tokens, ...).

    Attributes:
        field: the argument at fault, when one is named.
    """

    def __init__(self, message: str, *, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.field = field


class IndexNotFoundError(Error, FileNotFoundError):
    """There is no index in the folder: build one with ``n2g_index.build``."""


class IndexDamagedError(Error):
    """A file of the index cannot be read back (damaged or changed by hand);
    ``path`` names it."""


class IncompatibleIndexError(Error):
    """An index written by another format version or another configuration;
    ``path`` names its file."""


class IndexIncompleteError(Error):
    """The index's build has not reached the search index yet: run the same
    ``n2g_index.build`` call again to finish it."""


class IndexLockedError(Error):
    """Another process is writing the index (one writer at a time: a build or a
    reindex of the same folder).

    Attributes:
        holder: what holds the lock (e.g. ``"n2g-index build, pid 1234"``), when known.
    """

    def __init__(self, message: str, *, path: Optional[str] = None, holder: Optional[str] = None) -> None:
        super().__init__(message, path=path)
        self.holder = holder


class ModelError(Error):
    """A model file that cannot be loaded or run (malformed, unsupported
    architecture, tokenizer failure)."""


class MissingDataError(Error, FileNotFoundError):
    """The default model or corpus has not been fetched: run ``scripts/setup`` or give
    a path."""


__all__ = [
    "Error",
    "QueryError",
    "NeuronNotFoundError",
    "InvalidArgumentError",
    "IndexNotFoundError",
    "IndexDamagedError",
    "IncompatibleIndexError",
    "IndexIncompleteError",
    "IndexLockedError",
    "ModelError",
    "MissingDataError",
]
