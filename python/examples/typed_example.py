"""The package's API with type annotations: `mypy --strict` checks it against the
stubs (scripts/test-python)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np
import numpy.typing as npt

import n2g_index as n2g


def strongest(index: str, query: str) -> Optional[n2g.NeuronView]:
    """The neuron view of the best hit of `query`, if any."""
    idx = n2g.Index(index)
    hits: List[n2g.Hit] = idx.query(query, limit=20)
    if not hits:
        return None
    view = idx.neuron(hits[0].neuron, examples=3)
    graph: Optional[n2g.Graph] = view.graph
    if graph is not None:
        tokens: List[str] = [a.token for a in graph.activating]
        print(tokens, graph.paths[:3])
    for e in view.examples:
        print(e.max, e.tokens[e.argmax], e.role)
    return view


def table(text: str) -> npt.NDArray[np.float32]:
    """Layer 2's activations of `text`, `[tokens, neurons]`."""
    acts: n2g.Activations = n2g.Model().activations(text, layer=2, neurons=[0, 1, 2])
    return acts.activations


def similar(index: str) -> None:
    """Similar neurons, one by id string and one by tuple."""
    idx = n2g.Index(index)
    for h in idx.similar("2:1066", top=10):
        print(h.neuron, h.activating, h.relation)
    for p in idx.similar_all(threshold=0.9):
        print(p.a, p.b, p.relation)
    pred: n2g.Prediction = idx.predict((2, 1066), "some text")
    print(float(pred.predicted.max()))


def build() -> n2g.Index:
    """Builds (or resumes) a small index."""
    try:
        return n2g.build("index", corpus=["data/corpus/fortunes/wisdom"], layers="0-2", progress=True)
    except n2g.QueryError as e:
        print(e.position)
        raise
    except n2g.Error as e:
        print(e.path)
        raise


def sae_latents(index: str, sae: str) -> None:
    """An index of an SAE's latents: its unit set, a latent's view, the latents of a
    text."""
    idx = n2g.build(index, sae=sae, hook="blocks.3.hook_resid_post", max_density=0.05, progress=False)
    units: Dict[str, Any] = idx.units
    print(units["kind"], units["hook"], units["per_layer"])
    view = idx.neuron("3:0")
    kind: str = view.unit_kind
    skipped: Optional[str] = view.graph_skipped
    print(kind, view.unit, skipped)
    model: n2g.Model = idx.model()
    acts: n2g.Activations = model.activations("some text", neurons="0-7")
    print(model.units["per_layer"], acts.units["hook"], acts.activations.shape)
