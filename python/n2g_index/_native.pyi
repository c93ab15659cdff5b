"""Stubs of the Rust extension ``n2g_index._native`` (use the ``n2g_index`` package)."""

from typing import Any, Dict, List, Optional, Tuple, Union

_Neuron = Union[str, Tuple[int, int]]

class Index:
    """An opened index folder."""

    def __init__(self, path: str) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def path(self) -> str: ...
    def bos(self) -> bool: ...
    def model_path(self) -> str: ...
    def query(self, query: str, limit: int) -> List[Dict[str, Any]]: ...
    def _time_query(self, query: str, limit: int, repeats: int) -> float: ...
    def similar(self, neuron: _Neuron, top: int, threshold: float) -> List[Dict[str, Any]]: ...
    def similar_all(self, threshold: float) -> List[Dict[str, Any]]: ...
    def neuron(self, neuron: _Neuron, examples: Optional[int] = None) -> Dict[str, Any]: ...
    def info(self) -> Dict[str, Any]: ...
    def predict(self, model: Model, neuron: _Neuron, text: str) -> Dict[str, Any]: ...

class Model:
    """A loaded model."""

    def __init__(
        self,
        path: Optional[str] = None,
        device: str = "cpu",
        quantized: bool = False,
        tokenizer: Optional[str] = None,
        literal_special: bool = False,
    ) -> None: ...
    def info(self) -> Dict[str, Any]: ...
    def activations(
        self, text: str, layer: int, neurons: Optional[str] = None, bos: bool = True
    ) -> Dict[str, Any]: ...

def build(
    index: str,
    model: Optional[str] = None,
    corpus: Optional[List[str]] = None,
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
    progress: Optional[Any] = None,
) -> Index: ...
def default_model_path() -> str: ...
