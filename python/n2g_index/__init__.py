"""n2g_index: a neuron search engine for language-model interpretability.

One pass over a corpus builds a Neuron-to-Graph (N2G) explanation of every MLP neuron
of a model: which tokens make it fire and which earlier tokens it needs. The index
answers questions about the whole model in milliseconds::

    import n2g_index as n2g
    idx = n2g.Index("index")                            # or n2g.build(index="index")
    hits = idx.query("token:Paris context:capital")     # list of Hit
    nv = idx.neuron("2:1066")                           # stats, graph, examples
    a = n2g.Model().activations("some text", layer=2)   # NumPy [tokens, neurons]

Every answer mirrors the JSON of the ``n2g-index`` command line's ``--json``; every
error is an :class:`Error`.
"""

from ._errors import (
    Error,
    IncompatibleIndexError,
    IndexDamagedError,
    IndexIncompleteError,
    IndexLockedError,
    IndexNotFoundError,
    InvalidArgumentError,
    MissingDataError,
    ModelError,
    NeuronNotFoundError,
    QueryError,
)
from ._index import Index, Model, NeuronLike, build, default_model_path, merge
from ._progress import ProgressCallback
from ._views import (
    ActivatingToken,
    Activations,
    ContextToken,
    Example,
    Examples,
    Graph,
    Hit,
    NeuronView,
    Prediction,
    SimilarHit,
    SimilarPair,
)

__version__ = "0.1.0"

__all__ = [
    "Index",
    "Model",
    "build",
    "merge",
    "default_model_path",
    "NeuronLike",
    "ProgressCallback",
    "Hit",
    "SimilarHit",
    "SimilarPair",
    "NeuronView",
    "Graph",
    "ActivatingToken",
    "ContextToken",
    "Example",
    "Examples",
    "Activations",
    "Prediction",
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

# Public names show as n2g_index.X (in help(), reprs and tracebacks), not as the private
# module that defines them.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        try:
            _obj.__module__ = __name__
        except (AttributeError, TypeError):  # pragma: no cover - typing aliases
            pass
del _name, _obj
