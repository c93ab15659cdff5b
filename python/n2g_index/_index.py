"""Index, Model and build: the package's face over the engine's library."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from . import _native
from ._progress import Bar, ProgressCallback
from ._views import Activations, Hit, NeuronView, Prediction, SimilarHit, SimilarPair

if TYPE_CHECKING:
    import pandas  # type: ignore[import-untyped, unused-ignore]

#: A neuron: ``"L:N"`` (e.g. ``"2:1066"``) or a ``(layer, index)`` tuple.
NeuronLike = Union[str, Tuple[int, int]]
#: A file or folder path.
PathLike = Union[str, "os.PathLike[str]"]


def _neuron(n: NeuronLike) -> Union[str, Tuple[int, int]]:
    # Lists arrive from JSON or pandas; the engine takes a tuple.
    return (int(n[0]), int(n[1])) if isinstance(n, list) and len(n) == 2 else n


def _paths(corpus: Optional[Sequence[PathLike]]) -> Optional[List[str]]:
    if corpus is None:
        return None
    if isinstance(corpus, (str, os.PathLike)):
        return [os.fspath(corpus)]
    return [os.fspath(c) for c in corpus]


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("DataFrames need pandas: pip install pandas") from e
    return pandas


class Model:
    """A language model loaded for reading unit activations: its MLP neurons, or the
    latents of a sparse autoencoder (SAE) at one hook point.

    ``Model()`` loads the default model (fetched by ``scripts/setup``); ``Model(path)``
    a GGUF file (llama, gemma, gemma2, qwen2, qwen3) or a Hugging Face folder (those,
    mistral, gpt2, gpt_neox); ``Model(path, sae=SAE)`` reads the SAE's latents instead
    of the MLP neurons.

    Args:
        path: the model file or folder; ``None``: the default model.
        device: ``"cpu"``, ``"cuda:N"`` or ``"metal:N"`` (the engine built with GPU
            support).
        quantized: keep GGUF weights quantized (less memory, slower on CPU, not exact).
        tokenizer: a ``tokenizer.json`` to use instead of the model's own.
        literal_special: read special tokens written in a text (``<|im_start|>``) as
            their characters, not as their one id (the model's own tokenizer maps each
            to its id).
        sae: a sparse autoencoder whose latents become the units: a SAELens folder
            (``cfg.json`` + ``sae_weights.safetensors``), a Gemma Scope ``params.npz``
            or an EleutherAI sparsify folder (``cfg.json`` + ``sae.safetensors``).
        hook: the hook point the SAE reads, as TransformerLens names it
            (``"blocks.3.hook_resid_pre"``; ``hook_resid_mid``, ``hook_resid_post``,
            ``hook_attn_out``, ``hook_mlp_out``, ``mlp.hook_post``,
            ``ln2.hook_normalized``); needed when the SAE's file does not say it (Gemma
            Scope).

    Raises:
        InvalidArgumentError: a malformed ``hook`` (``.field == "hook"``), or an SAE
            that does not fit the model.
        ModelError, Error: a model or SAE file that cannot be read (the message names
            it).
    """

    def __init__(
        self,
        path: Optional[PathLike] = None,
        *,
        device: str = "cpu",
        quantized: bool = False,
        tokenizer: Optional[PathLike] = None,
        literal_special: bool = False,
        sae: Optional[PathLike] = None,
        hook: Optional[str] = None,
    ) -> None:
        self._native = _native.Model(
            None if path is None else os.fspath(path),
            device,
            quantized,
            None if tokenizer is None else os.fspath(tokenizer),
            literal_special,
            None if sae is None else os.fspath(sae),
            hook,
        )

    def info(self) -> Dict[str, Any]:
        """What the model is: path, name, architecture, layers, neurons per layer,
        special tokens."""
        return self._native.info()

    @property
    def units(self) -> Dict[str, Any]:
        """The units this model's activations are: ``kind`` (``"mlp_neurons"`` or
        ``"sae_latents"``), ``hook``, ``per_layer`` and ``sae`` (``None`` for neurons;
        else the SAE's path, SHA-256, format, architecture, hook, ``d_in``,
        ``d_sae``)."""
        return self._native.units()

    def __repr__(self) -> str:
        i = self.info()
        u = self.units
        if u["kind"] == "sae_latents":
            return f"Model({i['name']!r}, {u['per_layer']} SAE latents at {u['hook']})"
        return f"Model({i['name']!r}, {i['n_layers']} layers × {i['n_neurons']} neurons)"

    def activations(
        self,
        text: str,
        layer: Optional[int] = None,
        neurons: Union[None, str, Sequence[int]] = None,
        *,
        bos: bool = True,
    ) -> Activations:
        """The unit activations (MLP neurons, or SAE latents) of ``layer`` on each
        token of ``text``.

        Args:
            text: the text.
            layer: the layer whose units are read; required for MLP neurons, and for
                SAE latents ``None`` or the SAE's hook layer.
            neurons: the units to report: ``None`` (all), a list of indices (the
                columns in the list's order), or ranges as text (``"0-7,100"``,
                ascending).
            bos: prepend the BOS token (as TransformerLens does).

        Returns:
            An :class:`Activations` whose ``activations`` is a NumPy float32 array
            ``[tokens, units]``.

        Raises:
            InvalidArgumentError: no ``layer`` for MLP neurons, or a layer out of range
                (``.field == "layer"``).

        This call runs without the GIL.
        """
        if neurons is None or isinstance(neurons, str):
            return Activations(**self._native.activations(text, layer, neurons, bos))
        # The engine reports a selection in ascending order; a list's columns come in
        # the list's order.
        wanted = [int(n) for n in neurons]
        ascending = sorted(set(wanted))
        d = self._native.activations(text, layer, ",".join(map(str, ascending)), bos)
        if wanted != ascending:
            column = {n: i for i, n in enumerate(ascending)}
            d["activations"] = d["activations"][:, [column[n] for n in wanted]]
            d["neurons"] = wanted
        return Activations(**d)


class Index:
    """An n2g-index folder opened for reading: search, similarity and neuron views.

    Args:
        path: the index folder (made by ``n2g_index.build`` or ``n2g-index build``).

    Raises:
        IndexNotFoundError: there is no index in the folder.
        IndexDamagedError, IncompatibleIndexError: the index cannot be read.

    The index is read-only, beside other readers; it holds a shared lock on its store
    until :meth:`close` (or the end of a ``with`` block, or the object's deletion), and
    a build writing the same folder waits for it at its next commit.

    Example::

        with n2g_index.Index("index") as idx:
            idx.query("token:Paris context:capital", limit=5)
            nv = idx.neuron("2:1066")
    """

    def __init__(self, path: PathLike) -> None:
        self._native = _native.Index(os.fspath(path))
        self._model: Optional[Model] = None

    @classmethod
    def _wrap(cls, native: "_native.Index") -> "Index":
        self = cls.__new__(cls)
        self._native = native
        self._model = None
        return self

    @property
    def path(self) -> str:
        """The index folder."""
        return self._native.path

    def __repr__(self) -> str:
        return f"Index({self.path!r}{', closed' if self.closed else ''})"

    def close(self) -> None:
        """Releases the index's files, so that another process (a build, a reindex) may
        write the folder; later calls raise :class:`Error`. Closing twice does
        nothing."""
        self._native.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._native.closed

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, query: str, limit: int = 20) -> List[Hit]:
        """The neurons whose graphs match ``query``, best first, at most ``limit``.

        The grammar (``schema/QUERY.md``): ``token:Paris`` (an activating token),
        ``context:capital`` (a context token), ``after:#digit``, ``AND``/``OR``/``NOT``,
        fields such as ``layer:2`` and ``f1>0.5``.

        Raises:
            QueryError: the query does not parse (``.position`` says where).
        """
        return [Hit(**h) for h in self._native.query(query, limit)]

    def query_df(self, query: str, limit: int = 20) -> "pandas.DataFrame":
        """:meth:`query` as a pandas DataFrame, one row per hit, the columns of
        :class:`Hit` (pandas is imported on this call only)."""
        pd = _pandas()
        columns = self._native.query_columns(query, limit)
        return pd.DataFrame(columns, columns=["neuron", "layer", "index", "score", "f1", "paths"])

    def neuron(self, neuron: NeuronLike, examples: Optional[int] = None) -> NeuronView:
        """Everything the index knows of ``neuron``: statistics, graph, evaluation and
        its first ``examples`` top examples (all kept ones when ``None``).

        Raises:
            NeuronNotFoundError: the index does not cover the neuron.
        """
        d = self._native.neuron(_neuron(neuron), examples)
        return NeuronView._from(d, self._native.bos(), self)

    def similar(self, neuron: NeuronLike, top: int = 10, threshold: float = 0.9) -> List[SimilarHit]:
        """The ``top`` neurons whose activating and context tokens overlap most with
        ``neuron``'s, each with its relation (similar / subset / superset at
        ``threshold``, else overlap)."""
        return [SimilarHit(**h) for h in self._native.similar(_neuron(neuron), top, threshold)]

    def similar_df(self, neuron: NeuronLike, top: int = 10, threshold: float = 0.9) -> "pandas.DataFrame":
        """:meth:`similar` as a pandas DataFrame."""
        rows = self._native.similar(_neuron(neuron), top, threshold)
        return _pandas().DataFrame.from_records(rows, columns=["neuron", "activating", "context", "relation"])

    def similar_all(self, threshold: float = 0.9) -> List[SimilarPair]:
        """Every similar and subset pair of neurons in the index at ``threshold``.

        This call runs without the GIL."""
        return [SimilarPair(**p) for p in self._native.similar_all(threshold)]

    def similar_all_df(self, threshold: float = 0.9) -> "pandas.DataFrame":
        """:meth:`similar_all` as a pandas DataFrame."""
        rows = self._native.similar_all(threshold)
        return _pandas().DataFrame.from_records(rows, columns=["a", "b", "activating", "context", "relation"])

    def info(self) -> Dict[str, Any]:
        """What the index holds: model, units, corpus, scan settings and progress,
        size, graph settings, per-layer evaluation (the JSON of ``n2g-index info
        --json``)."""
        return self._native.info()

    @property
    def units(self) -> Dict[str, Any]:
        """The units the index holds: ``kind`` (``"mlp_neurons"`` or
        ``"sae_latents"``), ``hook``, ``per_layer`` and ``sae`` (``None`` for neurons;
        else the SAE's path, SHA-256, format, architecture, hook, ``d_in``,
        ``d_sae``), as ``info()["units"]``."""
        return self._native.units()

    def model(self) -> Model:
        """The model the index was built with, with the SAE it was built with when the
        index holds SAE latents (loaded on first use, then kept)."""
        if self._model is None:
            sae = self.units.get("sae")
            if sae is None:
                self._model = Model(self._native.model_path())
            else:
                self._model = Model(self._native.model_path(), sae=sae["path"], hook=sae["hook"])
        return self._model

    def predict(self, neuron: NeuronLike, text: str, *, model: Optional[Model] = None) -> Prediction:
        """What the graph of ``neuron`` predicts on ``text``, beside the neuron's real
        activations from ``model`` (default: the model the index was built with, see
        :meth:`model`)."""
        m = model if model is not None else self.model()
        return Prediction._from(self._native.predict(m._native, _neuron(neuron), text))


def build(
    index: PathLike,
    model: Optional[PathLike] = None,
    corpus: Optional[Sequence[PathLike]] = None,
    *,
    layers: Optional[str] = None,
    neurons: Optional[str] = None,
    top_k: Optional[int] = None,
    window: Optional[int] = None,
    batch_size: Optional[int] = None,
    checkpoint_every: Optional[int] = None,
    bos: Optional[bool] = None,
    scan_only: Optional[bool] = None,
    device: Optional[str] = None,
    quantized: Optional[bool] = None,
    literal_special: Optional[bool] = None,
    force: Optional[bool] = None,
    shard: Optional[str] = None,
    sae: Optional[PathLike] = None,
    hook: Optional[str] = None,
    max_density: Optional[float] = None,
    progress: Union[bool, ProgressCallback] = True,
) -> Index:
    """Builds (or resumes) an index: scan the corpus with the model, build an N2G graph
    for every selected neuron, index the graphs; then opens it.

    Options left ``None`` take the engine's defaults (those of ``n2g-index build``).

    Args:
        index: the index folder; an unfinished build there is resumed.
        model: a GGUF file or Hugging Face folder (default: the fetched model).
        corpus: corpus files or folders (default: the fetched corpus).
        layers: layers as numbers and ranges (``"0-2"``, ``"5"``, ``"all"``; default
            ``"0-2"``).
        neurons: neurons in every layer, numbers and ranges or ``"all"`` (default).
        top_k: examples kept per neuron (default 20).
        window: tokens per window (default 64).
        batch_size: windows per forward batch (default 16).
        checkpoint_every: scan batches between checkpoints (default 200).
        bos: prepend BOS to windows (default True).
        scan_only: stop after the scan (default False).
        device: ``"cpu"`` (default), ``"cuda:N"``, ``"metal:N"``.
        quantized: keep GGUF weights quantized (default False).
        literal_special: read special tokens written in the corpus as their
            characters, not as their one id (default False).
        force: build into a non-empty folder that is not an index, keeping its files
            (default False: refused).
        shard: ``"I/N"``: build only shard I of N (from 0) of the selected neurons;
            join the shards with :func:`merge` (``docs/SCALE.md``).
        sae: a sparse autoencoder whose latents are the units instead of the MLP
            neurons (see :class:`Model`); ``layers`` then defaults to its hook layer.
        hook: the hook point the SAE reads (``"blocks.3.hook_resid_pre"``), when its
            file does not say it (Gemma Scope).
        max_density: build no graph for units firing on more than this share (0 to
            1) of the corpus's tokens (dense SAE latents); their views say why
            (``graph_skipped``). Default: every graph.
        progress: ``True`` shows a bar (tqdm when installed, in a terminal or Jupyter),
            ``False`` nothing; or an object with ``start``/``advance``/``finish``/
            ``note`` methods (:class:`ProgressCallback`).

    Returns:
        The opened :class:`Index`.

    Raises:
        InvalidArgumentError: an option that cannot work; ``.field`` names it
            (``"hook"``, ``"max_density"``, ...).
        KeyboardInterrupt: Ctrl-C (or the progress object) stopped the build at a
            checkpoint; the work so far is kept and the same call resumes it.

    The build runs without the GIL.
    """
    target: Optional[Any] = Bar() if progress is True else (None if progress is False else progress)
    native = _native.build(
        os.fspath(index),
        None if model is None else os.fspath(model),
        _paths(corpus),
        layers,
        neurons,
        top_k,
        window,
        batch_size,
        checkpoint_every,
        bos,
        scan_only,
        device,
        quantized,
        literal_special,
        force,
        shard,
        None if sae is None else os.fspath(sae),
        hook,
        max_density,
        target,
    )
    return Index._wrap(native)


def merge(
    shards: Sequence[PathLike],
    into: PathLike,
    *,
    progress: Union[bool, ProgressCallback] = True,
) -> Index:
    """Joins the finished indexes of a sharded build (``build(..., shard="I/N")``, or
    builds of disjoint layer / neuron slices) into the new index folder ``into``, and
    opens it. Refuses shards of other inputs, overlapping or missing ones and unfinished
    ones, naming them; the result equals one build of the union. Running it again over
    the same shards writes the same index."""
    target: Optional[Any] = Bar() if progress is True else (None if progress is False else progress)
    native = _native.merge([os.fspath(s) for s in shards], os.fspath(into), target)
    return Index._wrap(native)


def default_model_path() -> str:
    """Where the default model is (``data/models/...``, fetched by ``scripts/setup``;
    ``$N2G_DATA`` overrides the ``data`` folder)."""
    return _native.default_model_path()
