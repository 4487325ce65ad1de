"""LightGBM forests compiled to native code for scoring (lleaves, through LLVM).

Scoring is the longest step at scale: every SKU goes through the point and quantile models at
each of the H recursive steps, and LightGBM's own `predict` walks every tree node by node
through generic structures. lleaves turns a fitted forest into one native function (each tree
becomes plain branches on double-precision thresholds, summed block of trees by block), so it
gives LightGBM's numbers, to the last few bits of a double, several times faster (README:
Performance).

Compiling costs seconds per model (the forest's IR is built in Python, then LLVM compiles it
without inlining the trees, which would take minutes), so it pays off only on a large scoring
pass (`model.compile_for_scoring`). Machine code belongs to one process and is not pickled.
`compiled(text)` compiles a model once per process and keeps it under the digest of its text:
threads, repeated calls and each Dask worker share one compilation. Compilations in a process
run one at a time (LLVM's global context is not safe to share between threads), so
`compile_all` compiles several models in child processes at once, one per core, and loads the
object files they write (`python -m zeos_forecast.core.compiled MODEL OBJECT ...`).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["COMPILE_MIN_PREDICTIONS", "CompiledForest", "compile_all", "compiled", "model_digest"]

# Measured on 2 cores (100 trees of 63 leaves, 30 inputs): compiling takes ~3.8 s; a prediction
# takes ~5.2 us in LightGBM and ~1.5 us compiled (one thread), so compiling pays from about a
# million predictions per model. Below twice that, LightGBM's own predict is used.
COMPILE_MIN_PREDICTIONS = 2_000_000
# A run scores with one set of models (point and quantiles); room for a few runs in a process.
CACHE_SIZE = 8
# A model compiles in seconds; a child that takes this long is stuck.
CHILD_TIMEOUT_SECONDS = 600
# Trees per cache block: the rows pass through one block of trees at a time, whose code stays in
# the instruction cache. The 1M benchmark's four models (100 trees of 63 leaves, 22 inputs) on
# 46,035 rows of its scoring features, one thread, median of 25: blocks of 34 trees (lleaves'
# default) 0.205 s, 26: 0.188 s, 22: 0.182 s, 17: 0.177 s, 12: 0.177 s. The sums differ from
# the default blocks' by 2e-12 at most (the trees are added in another grouping).
TREES_PER_BLOCK = 17

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
        _keep(digest, forest)
        return forest


def compile_all(texts: Sequence[str], processes: int) -> None:
    """Compiles the models of `texts` that this process has not compiled yet.

    With more than one to compile and `processes` > 1, up to `processes` child processes
    compile them side by side (LLVM uses one core per model) into object files; this process
    then loads their machine code, which takes milliseconds. Otherwise they are compiled here,
    one after the other.
    """
    digests = {model_digest(text): text for text in texts}
    with _lock:
        missing = {d: t for d, t in digests.items() if d not in _cache}
    if len(missing) < 2 or processes < 2:
        for digest, text in missing.items():
            compiled(text, digest)
        return
    with tempfile.TemporaryDirectory(prefix="zeos-forests-") as folder:
        jobs = [(Path(folder) / f"{d}.txt", Path(folder) / f"{d}.o", d) for d in missing]
        for model_file, _, digest in jobs:
            model_file.write_text(missing[digest])
        shares = [jobs[i :: min(processes, len(jobs))] for i in range(min(processes, len(jobs)))]
        children = [
            subprocess.Popen(
                [sys.executable, "-m", __name__, *(str(p) for m, o, _ in share for p in (m, o))],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for share in shares
        ]
        errors = [error for error in map(_finished, children) if error]
        if errors:
            raise RuntimeError(f"Compiling forests in a child process failed: {errors[0]}")
        with _lock:
            for model_file, object_file, digest in jobs:
                _keep(digest, CompiledForest(_load(model_file, object_file)))


def _finished(child: subprocess.Popen) -> str:
    """Nothing when `child` compiled its share in time, else what went wrong (its stderr's end)."""
    try:
        _, error = child.communicate(timeout=CHILD_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return f"no result within {CHILD_TIMEOUT_SECONDS} s"
    return "" if child.returncode == 0 else f"exit {child.returncode}: {error[-2000:]}"


def _keep(digest: str, forest: CompiledForest) -> None:
    _cache[digest] = forest
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)


def _compile(text: str) -> Any:
    with tempfile.TemporaryDirectory(prefix="zeos-forest-") as folder:
        path = Path(folder) / "model.txt"  # lleaves reads a model file, not a string
        path.write_text(text)
        return _load(path, None)


def _load(model_file: Path, object_file: Path | None) -> Any:
    """The compiled model of `model_file`: compiled now, or loaded from `object_file` when that
    exists (else written there once compiled)."""
    import lleaves  # imported when scoring, like LightGBM: the code location loads without it

    model = lleaves.Model(model_file=str(model_file))
    cache = None if object_file is None else str(object_file)
    model.compile(cache=cache, finline=False, fblocksize=TREES_PER_BLOCK)
    return model


if __name__ == "__main__":  # a child of `compile_all`: MODEL OBJECT pairs
    pairs = sys.argv[1:]
    for model_path, object_path in zip(pairs[::2], pairs[1::2], strict=True):
        _load(Path(model_path), Path(object_path))
