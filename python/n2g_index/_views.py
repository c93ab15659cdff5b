"""The answers of an index as Python classes. Each mirrors one of the engine's view
types: the same field names as the JSON the command line prints with ``--json``
(``schema/*.schema.json``)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

from ._errors import Error

if TYPE_CHECKING:
    from ._index import Index, Model


@dataclass
class Hit:
    """A neuron whose graph matches a query.

    Attributes:
        neuron: the neuron, ``"L:N"``.
        layer: its layer.
        index: its index within the layer.
        score: the normalised activation of its best matching path (the rank).
        f1: its graph's firing F1 on held-out examples.
        paths: every matching path, best first, each a tuple of tokens in text order
            (context tokens from the earliest, the activating token last; ``"*"`` is
            any token).
    """

    neuron: str
    layer: int
    index: int
    score: float
    f1: float
    paths: List[Tuple[str, ...]]


@dataclass
class SimilarHit:
    """A neuron whose token sets overlap a target's.

    Attributes:
        neuron: the candidate neuron, ``"L:N"``.
        activating: activating-token similarity, ``|A∩B| / max(|A|,|B|)``.
        context: context-token similarity, the same measure.
        relation: ``"similar"``, ``"subset"``, ``"superset"`` or ``"overlap"``.
    """

    neuron: str
    activating: float
    context: float
    relation: str


@dataclass
class SimilarPair:
    """A similar or subset pair of neurons of the whole index.

    Attributes:
        a: the first neuron (the contained one for ``"subset"``).
        b: the second neuron.
        activating: activating-token similarity.
        context: context-token similarity.
        relation: ``"similar"`` or ``"subset"`` (``a`` is contained in ``b``).
    """

    a: str
    b: str
    activating: float
    context: float
    relation: str


@dataclass
class ActivatingToken:
    """An activating token of a graph: its normalised string and the highest
    normalised activation of a path ending on it."""

    token: str
    activation: float


@dataclass
class ContextToken:
    """A context token of a graph: its normalised string, its distance from the
    activating token (1 = just before it), and its importance."""

    token: str
    depth: int
    importance: float


@dataclass
class Graph:
    """A neuron's N2G graph.

    Attributes:
        activating: activating tokens, strongest first.
        context: context tokens by depth.
        paths: every path, a tuple of tokens from the activating token backwards,
            ``"*"`` for any token.
        path_activations: the normalised activation of each path.
        nodes: trie nodes.

    In Jupyter a graph read from an index shows as its drawing (:meth:`svg`).
    """

    activating: List[ActivatingToken]
    context: List[ContextToken]
    paths: List[Tuple[str, ...]]
    path_activations: List[float]
    nodes: int
    _drawing: Optional[Callable[[], Optional[str]]] = field(default=None, repr=False, compare=False)

    @classmethod
    def _from(cls, d: Dict[str, Any], drawing: Optional[Callable[[], Optional[str]]] = None) -> "Graph":
        return cls(
            activating=[ActivatingToken(**a) for a in d["activating"]],
            context=[ContextToken(**c) for c in d["context"]],
            paths=[tuple(p) for p in d["paths"]],
            path_activations=d["path_activations"],
            nodes=d["nodes"],
            _drawing=drawing,
        )

    def svg(self) -> str:
        """The graph drawn as a standalone SVG document: activating tokens on the right,
        context tokens leading to them, quiet patterns marked (as ``n2g-index show L:N
        --format svg`` and the web page draw it). Read from the index on each call.

        Raises:
            Error: the graph was not read from an index, or the index is closed.
        """
        if self._drawing is None:
            raise Error("this graph was not read from an index: nothing to draw it from")
        drawn = self._drawing()
        if drawn is None:
            raise Error("the index holds no graph for this neuron any more")
        return drawn

    def _repr_svg_(self) -> Optional[str]:
        """Jupyter's picture of the graph; ``None`` (the text repr) when it cannot be drawn."""
        if self._drawing is None:
            return None
        return self.svg()


def _drawing(index: "Index", neuron: str) -> Callable[[], Optional[str]]:
    """Draws ``neuron``'s graph from ``index`` when called (``Graph.svg``)."""
    return lambda: index._native.graph_svg(neuron)


def _strip_html(tokens: List[str], activations: List[float], argmax: int, scale: float, first: int) -> str:
    """Tokens as HTML spans, background red in proportion to ``activation / scale``."""
    spans = []
    for i in range(first, len(tokens)):
        a = activations[i]
        x = min(max(a / scale, 0.0), 1.0) if scale > 0 else 0.0
        g = int(255 * (1.0 - x))
        text = html.escape(tokens[i].replace("\n", "\u21b5"))
        style = f"background:rgb(255,{g},{g});color:#000"
        if i == argmax:
            style += ";font-weight:bold;text-decoration:underline"
        spans.append(f'<span style="{style}" title="{a:.3f}">{text}</span>')
    return "".join(spans)


@dataclass
class Example:
    """One top example of a neuron: a corpus window with the neuron's activations.

    Attributes:
        window: the window's id in the corpus.
        tokens: token strings (BOS as token 0 when the index's windows start with it).
        ids: token ids.
        activations: the neuron's raw activation at each token.
        argmax: position of the maximum (never the BOS).
        max: the maximum activation.
        role: ``"train"`` or ``"held_out"`` once graphs are built, else ``None``.
    """

    window: int
    tokens: List[str]
    ids: List[int]
    activations: List[float]
    argmax: int
    max: float
    role: Optional[str] = None


class Examples(List[Example]):
    """A neuron's top examples, best first; shows as coloured tokens in Jupyter."""

    def __init__(self, items: List[Example], scale: float, bos: bool) -> None:
        super().__init__(items)
        self.scale = scale
        self.bos = bos

    def _repr_html_(self) -> str:
        rows = []
        for rank, e in enumerate(self, 1):
            mark = " H" if e.role == "held_out" else ""
            strip = _strip_html(e.tokens, e.activations, e.argmax, self.scale, 1 if self.bos else 0)
            rows.append(
                f'<div style="white-space:pre-wrap;font-family:monospace;margin:2px 0">'
                f"<b>{rank}.{mark}</b> {e.max:.3f} &nbsp;{strip}</div>"
            )
        note = " (H: held out from training)" if any(e.role == "held_out" for e in self) else ""
        return f"<div><i>top examples, coloured by activation / max{note}</i>{''.join(rows)}</div>"


@dataclass(repr=False)
class NeuronView:
    """Everything an index knows of one unit: an MLP neuron, or an SAE latent.

    Attributes:
        neuron: ``"L:N"``.
        layer: the layer.
        index: the index within the layer.
        unit_kind: ``"mlp_neurons"`` or ``"sae_latents"`` (the index's ``units`` say
            which SAE).
        max_activation: the largest activation over the corpus (BOS excluded).
        mean_activation: the mean activation over the corpus (BOS excluded).
        positive_fraction: the fraction of tokens with activation > 0.
        tokens: tokens scanned.
        examples: the top examples, best first (coloured tokens in Jupyter).
        graph: the N2G graph, once built.
        eval: its evaluation (held-out and random-window scores), once built, as in
            the JSON.
        graph_skipped: why the unit has no graph when the build skipped it as dense
            (``build(..., max_density=...)``), else ``None``.
    """

    neuron: str
    layer: int
    index: int
    unit_kind: str
    max_activation: float
    mean_activation: float
    positive_fraction: float
    tokens: int
    examples: Examples
    graph: Optional[Graph]
    eval: Optional[Dict[str, Any]]
    graph_skipped: Optional[str] = None
    _index: Optional["Index"] = field(default=None, repr=False, compare=False)

    @classmethod
    def _from(cls, d: Dict[str, Any], bos: bool, index: Optional["Index"]) -> "NeuronView":
        examples = [Example(**e) for e in d.get("examples", [])]
        graph = d.get("graph")
        drawing = _drawing(index, d["neuron"]) if index is not None else None
        return cls(
            neuron=d["neuron"],
            layer=d["layer"],
            index=d["index"],
            unit_kind=d["unit_kind"],
            max_activation=d["max_activation"],
            mean_activation=d["mean_activation"],
            positive_fraction=d["positive_fraction"],
            tokens=d["tokens"],
            examples=Examples(examples, d["max_activation"], bos),
            graph=Graph._from(graph, drawing) if graph is not None else None,
            eval=d.get("eval"),
            graph_skipped=d.get("graph_skipped"),
            _index=index,
        )

    @property
    def unit(self) -> str:
        """``"latent"`` for an SAE latent, else ``"neuron"``."""
        return "latent" if self.unit_kind == "sae_latents" else "neuron"

    def __repr__(self) -> str:
        if self.graph is not None:
            graph = f"graph of {len(self.graph.paths)} paths"
        elif self.graph_skipped is not None:
            graph = f"no graph: {self.graph_skipped}"
        else:
            graph = "no graph yet"
        return (
            f"NeuronView({self.unit} {self.neuron}, max {self.max_activation:.4g}, "
            f"{len(self.examples)} examples, {graph})"
        )

    def predict(self, text: str, model: Optional["Model"] = None) -> "Prediction":
        """What this neuron's graph predicts on ``text``, beside the neuron's real
        activations (from ``model``; default: the model the index was built with)."""
        if self._index is None:
            raise ValueError("this view is not attached to an index")
        return self._index.predict(self.neuron, text, model=model)


@dataclass
class Activations:
    """Per-token activations of a text, straight from a model.

    Attributes:
        model: the model's name.
        units: the units read (as :attr:`Model.units`): MLP neurons or SAE latents.
        layer: the layer.
        bos: whether token 0 is the BOS token.
        ids: token ids.
        tokens: token strings.
        neurons: the units reported (neuron or latent indices), one column each.
        activations: float32 array ``[tokens, units]``.
    """

    model: str
    units: Dict[str, Any]
    layer: int
    bos: bool
    ids: List[int]
    tokens: List[str]
    neurons: List[int]
    activations: npt.NDArray[np.float32]


@dataclass
class Prediction:
    """What a neuron's graph predicts on a text, beside the neuron's activations.

    Attributes:
        neuron: ``"L:N"``.
        bos: whether token 0 is the BOS token (0 in ``normalized`` and ``predicted``).
        tokens: token strings.
        ids: token ids.
        activations: the neuron's activation at each token (float32).
        normalized: the activation divided by the neuron's max over the corpus.
        predicted: the graph's prediction at each token, on the normalised scale.
    """

    neuron: str
    bos: bool
    tokens: List[str]
    ids: List[int]
    activations: npt.NDArray[np.float32]
    normalized: npt.NDArray[np.float32]
    predicted: npt.NDArray[np.float32]

    @classmethod
    def _from(cls, d: Dict[str, Any]) -> "Prediction":
        f32: Callable[[Any], npt.NDArray[np.float32]] = lambda v: np.asarray(v, dtype=np.float32)
        return cls(
            neuron=d["neuron"],
            bos=d["bos"],
            tokens=d["tokens"],
            ids=d["ids"],
            activations=f32(d["activations"]),
            normalized=f32(d["normalized"]),
            predicted=f32(d["predicted"]),
        )

    def _repr_html_(self) -> str:
        first = 1 if self.bos else 0
        actual = _strip_html(self.tokens, [float(x) for x in self.normalized], -1, 1.0, first)
        predicted = _strip_html(self.tokens, [float(x) for x in self.predicted], -1, 1.0, first)
        return (
            f"<div style='white-space:pre-wrap;font-family:monospace'>"
            f"<i>neuron {html.escape(self.neuron)}: activation / max, then the graph's prediction</i><br>"
            f"{actual}<br>{predicted}</div>"
        )
