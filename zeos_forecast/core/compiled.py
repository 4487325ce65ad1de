"""LightGBM forests compiled to native code for scoring (lleaves, through LLVM).

Scoring is the longest step at scale: every SKU goes through the point and quantile models at
each of the H recursive steps, and LightGBM's own `predict` walks every tree node by node
through generic structures. lleaves turns a fitted forest into one native function (each tree
becomes plain branches on double-precision thresholds, summed in LightGBM's order), so it gives
LightGBM's numbers several times faster (README: Performance).

Compiling costs seconds per model (the forest's IR is built in Python, then LLVM compiles it
without inlining the trees, which would take minutes), so it pays off only on a large scoring
pass: `worth_compiling`. Machine code belongs to one process and is not pickled.
`compiled(text)` compiles a model once per process and keeps it under the digest of its text:
threads, repeated calls and each Dask worker share one compilation. Compilations run one at a
time (LLVM's global context is not safe to share between threads).
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["COMPILE_MIN_PREDICTIONS", "CompiledForest", "compiled", "model_digest"]

# Measured on 2 cores (100 trees of 63 leaves, 30 inputs): compiling takes ~3.8 s; a prediction
# takes ~5.2 us in LightGBM and ~1.5 us compiled (one thread), so compiling pays from about a
# million predictions per model. Below twice that, LightGBM's own predict is used.
COMPILE_MIN_PREDICTIONS = 2_000_000
# A run scores with one set of models (point and quantiles); room for a few runs in a process.
CACHE_SIZE = 8

_cache: OrderedDict[str, CompiledForest] = OrderedDict()
_lock = threading.Lock()


class CompiledForest:
    """A compiled LightGBM model: `predict(matrix, threads)` as `Booster.predict` would."""

    def __init__(self, model: Any):
        self._model = model

    def predict(self, matrix: np.ndarray, threads: int) -> np.ndarray:
        # lleaves reads doubles: float32 inputs are widened exactly, as LightGBM does.
        rows = np.ascontiguousarray(matrix, dtype="float64")
        return self._model.predict(rows, n_jobs=max(int(threads), 1))


def model_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def compiled(text: str, digest: str | None = None) -> CompiledForest:
    """The model of LightGBM model `text` (`Booster.model_to_string()`), compiled once here."""
    digest = digest or model_digest(text)
    with _lock:
        if digest in _cache:
            _cache.move_to_end(digest)
            return _cache[digest]
        forest = CompiledForest(_compile(text))
        _cache[digest] = forest
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        return forest


def _compile(text: str) -> Any:
    import lleaves  # imported when scoring, like LightGBM: the code location loads without it

    with tempfile.TemporaryDirectory(prefix="zeos-forest-") as folder:
        path = Path(folder) / "model.txt"  # lleaves reads a model file, not a string
        path.write_text(text)
        model = lleaves.Model(model_file=str(path))
        model.compile(finline=False)
    return model
