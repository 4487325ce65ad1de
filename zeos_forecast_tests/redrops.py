"""Re-drops as users make them with real file tools: `cp -a`, `rsync -a`, `mv`, old file times.

Each `REDROPS` entry replaces a week's drop with the files of a staging folder the way its tool
does, data files first and the `_SUCCESS` marker last (the contract), every file keeping the old
modification time of the staged copy (`OLD_TIME`, as a restore from a backup does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pandas as pd

SUCCESS_MARKER = "_SUCCESS"
# 2024-01-01 00:00 UTC: older than anything a test writes, so mtimes never say "newer".
OLD_TIME = 1_704_067_200


def stage(staging: Path, frame: pd.DataFrame, name: str = "part-0.parquet") -> Path:
    """A complete drop in `staging`: `frame` as `name`, then its marker, both dated `OLD_TIME`."""
    staging.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(staging / name, index=False)
    (staging / SUCCESS_MARKER).touch()
    for path in staging.iterdir():
        os.utime(path, (OLD_TIME, OLD_TIME))
    return staging


def _ordered(staging: Path) -> list[Path]:
    """The staged files, the marker last."""
    return sorted(staging.iterdir(), key=lambda p: (p.name == SUCCESS_MARKER, p.name))


def cp_a(staging: Path, drop: Path) -> None:
    """`cp -a` of each staged file over the drop's, the marker last."""
    for path in _ordered(staging):
        subprocess.run(["cp", "-a", str(path), str(drop / path.name)], check=True, timeout=30)


def rsync_a_like(staging: Path, drop: Path) -> None:
    """What `rsync -a` leaves: each file rewritten in place with the source's mtime."""
    for path in _ordered(staging):
        shutil.copyfile(path, drop / path.name)
        os.utime(drop / path.name, (OLD_TIME, OLD_TIME))


def mv(staging: Path, drop: Path) -> None:
    """`mv` of each staged file into the drop (same filesystem: a rename), the marker last."""
    for path in _ordered(staging):
        subprocess.run(["mv", "-f", str(path), str(drop / path.name)], check=True, timeout=30)


REDROPS: dict[str, Callable[[Path, Path], None]] = {
    "cp -a": cp_a,
    "rsync -a": rsync_a_like,
    "mv": mv,
}
