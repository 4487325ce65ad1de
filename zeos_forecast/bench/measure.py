"""Wall time and peak memory of a command run as its own process tree."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = ["Measured", "run_measured", "tree_rss"]

# How often the process tree's memory is sampled: a peak shorter than this can be missed.
POLL_SECONDS = 0.2
LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class Measured:
    """One measured run of a command.

    Attributes:
        command: What ran.
        seconds: Wall time, from start to exit.
        peak_rss_bytes: The largest sum of resident memory over the process and all its
            descendants seen at any sample (pages shared between them count once per process).
        returncode: The exit code (negative: killed by that signal, -9 is the OOM killer's).
        log: The file holding the run's stdout and stderr.
        samples: Every sample taken: (seconds since the epoch, resident memory of the tree),
            to see how memory moved during the run, not only its peak.
    """

    command: list[str]
    seconds: float
    peak_rss_bytes: int
    returncode: int
    log: Path
    samples: tuple[tuple[float, int], ...] = ()

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def run_measured(
    command: Sequence[str],
    log: Path,
    env: Mapping[str, str] | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> Measured:
    """Runs `command` to completion, sampling its process tree's memory every `poll_seconds`.

    Its output goes to `log` (created, with its folder), not to this process's terminal.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    samples: list[tuple[float, int]] = []
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, env=env)
        with contextlib.suppress(psutil.NoSuchProcess):  # it may exit before the first sample
            root = psutil.Process(process.pid)
            while process.poll() is None:
                samples.append((time.time(), tree_rss(root)))
                time.sleep(poll_seconds)
        returncode = process.wait()
    seconds = time.perf_counter() - started
    peak = max((rss for _, rss in samples), default=0)
    return Measured(list(command), seconds, peak, returncode, log, tuple(samples))


def tree_rss(root: psutil.Process) -> int:
    """Resident memory of `root` and all its descendants now, in bytes."""
    total = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # exited between the listing and the sample
    return total
