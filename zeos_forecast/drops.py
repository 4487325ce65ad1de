"""Landing drops: what a drop folder holds, its content identity, and when it may be read.

Dagster-free and the only place these rules live: `Lake` (storage.py) lists and reads drops with
them, and through the lake so do the sensor's landing zone and the CLI's run planner.

- **Identity is content.** A drop's identity is a digest of its data files' names, sizes and
  checksums: SHA-256 of the bytes on a local lake, the ETag on S3. Never a timestamp: a week dropped
  again with `cp -a`, `rsync -a`, `mv` or from a backup is a new drop exactly when its bytes differ.
- **A drop is read as one snapshot.** Its listing (names, sizes, versions) is taken before reading
  and again after; a drop that changed in between, or whose files changed after its `_SUCCESS`
  marker (a re-drop over an old marker, still arriving), is not used.
- **Only regular files inside the landing zone.** A link whose target leaves the landing zone, and
  anything that is not a regular file (a folder, a FIFO, a device), is refused with its name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from .core.contract import LandingDataError

__all__ = [
    "DATA_SUFFIXES",
    "DROP_QUIET_SECONDS",
    "IDENTITY_FOOTER_KEY",
    "MARKER_GRACE_SECONDS",
    "SAFE_REDROP_HINT",
    "SUCCESS_MARKER",
    "Drop",
    "DropChangedError",
    "DropListing",
    "FileVersion",
    "drop_identity",
    "file_sha256",
    "is_data_name",
    "list_local_drop",
    "refuse_outside_landing",
]

SUCCESS_MARKER = "_SUCCESS"
# The footer key of a `sales_history` partition that records the identity of the drop it was
# validated from: the planners compare it with the drop's identity now.
IDENTITY_FOOTER_KEY = "zeos.drop_identity"
DATA_SUFFIXES = (".parquet", ".csv", ".csv.gz")
# A data file that changed more than this after the marker was last written means the marker is
# older than the files: a re-drop arriving over the previous drop's marker. The slack covers a
# whole folder copied at once (`cp -a`, `rsync -a`), whose marker may land a moment before a file.
MARKER_GRACE_SECONDS = 1.0
# ... and such a drop is read once its marker is written again, or once nothing in it has changed
# for this long (a copy that wrote the marker first and is long finished).
DROP_QUIET_SECONDS = 60.0
SAFE_REDROP_HINT = (
    "To replace a drop safely: delete its _SUCCESS marker first, then replace the files, then "
    "write the marker again (or stage the new drop in another folder and move it into place). "
    "Then run again; nothing was written from this drop."
)
_CHECKSUM_CACHE_ENTRIES = 100_000
_checksums: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class FileVersion:
    """One listed file: its size, a stamp that changes whenever it may have, and when it did.

    Attributes:
        size: Bytes.
        stamp: Locally device, inode, size, mtime and ctime (ctime cannot be set back by any copy
            tool); on S3 the ETag.
        changed: When it last changed, epoch seconds: ctime locally, LastModified on S3.
    """

    size: int
    stamp: str
    changed: float


@dataclass(frozen=True)
class DropListing:
    """A drop folder at one moment: its data files and its marker.

    Attributes:
        folder: The folder's path or URI, for messages.
        files: Data files (`.parquet`, `.csv`, `.csv.gz`, not hidden) by name.
        marker: The `_SUCCESS` marker, None when there is none (or it is not a file).
        problem: Why the drop cannot be read at all (a link out of the landing zone, something
            that is not a regular file, a `_SUCCESS` folder), None when it can.
    """

    folder: str
    files: dict[str, FileVersion] = field(default_factory=dict)
    marker: FileVersion | None = None
    problem: LandingDataError | None = None

    def arriving(self, now: float) -> bool:
        """Whether files changed after the marker, recently: a re-drop over an old marker."""
        if self.marker is None or not self.files:
            return False
        newest = max(f.changed for f in self.files.values())
        return newest > self.marker.changed + MARKER_GRACE_SECONDS and (
            now - newest < DROP_QUIET_SECONDS
        )

    def changes_since(self, before: DropListing) -> pd.DataFrame:
        """Files added, removed or changed since `before`, one row each (empty: none)."""
        rows = []
        for name in sorted(set(before.files) | set(self.files)):
            old, new = before.files.get(name), self.files.get(name)
            if old != new:
                what = "added" if old is None else "removed" if new is None else "changed"
                rows.append(
                    {
                        "file": name,
                        "what": what,
                        "size_before": old.size if old else None,
                        "size_after": new.size if new else None,
                    }
                )
        if (before.marker is None) != (self.marker is None):
            what = "removed" if self.marker is None else "added"
            rows.append({"file": SUCCESS_MARKER, "what": what})
        return pd.DataFrame(rows)


@dataclass(frozen=True)
class Drop:
    """A weekly drop with its marker, as the run planners see it.

    Attributes:
        week: The Monday its folder names.
        identity: Its content identity (`drop_identity`); empty while it cannot be read.
        files: Number of data files.
        problem: Why it cannot be read now (still arriving, a link out of the landing zone, ...);
            None when it is ready.
    """

    week: dt.date
    identity: str
    files: int
    problem: str | None = None

    @property
    def ready(self) -> bool:
        return self.problem is None


class DropChangedError(LandingDataError):
    """A drop changed while it was being read, or is still arriving over its old marker."""


def drop_identity(files: Iterable[tuple[str, int, str]]) -> str:
    """The content identity of a drop from its data files' `(name, size, checksum)`.

    Checksum: SHA-256 of the bytes (local) or the ETag (S3). The marker is no part of it.
    """
    return hashlib.sha256(repr(sorted(files)).encode()).hexdigest()[:16]


def is_data_name(name: str) -> bool:
    """Whether a file of a drop or metadata folder is data (not hidden, a known suffix)."""
    return not name.startswith((".", "_")) and name.endswith(DATA_SUFFIXES)


def file_sha256(path: str, version: FileVersion) -> str:
    """SHA-256 of a local file's bytes, computed once per version of the file (see `stamp`)."""
    key = (path, version.stamp)
    if key not in _checksums:
        if len(_checksums) >= _CHECKSUM_CACHE_ENTRIES:
            _checksums.clear()
        with open(path, "rb") as handle:
            _checksums[key] = hashlib.file_digest(handle, "sha256").hexdigest()
    return _checksums[key]


def list_local_drop(folder: str, landing_root: str) -> DropListing:
    """A local drop folder's data files and marker, each checked to be a regular file inside
    `landing_root` (links are followed only when their target stays inside it)."""
    listing = DropListing(folder=folder)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        return listing
    files: dict[str, FileVersion] = {}
    marker = None
    for entry in entries:
        name = entry.name
        if name.startswith(".") or (name.startswith("_") and name != SUCCESS_MARKER):
            continue  # temporaries and other tools' bookkeeping (`_temporary/`), never read
        try:
            version, kind = _local_version(entry.path, landing_root)
        except FileNotFoundError:
            continue  # removed since the folder was listed: as if listed a moment later
        except LandingDataError as error:
            return DropListing(folder=folder, problem=error)
        if name == SUCCESS_MARKER:
            if kind == "folder":
                return DropListing(
                    folder=folder,
                    problem=LandingDataError(
                        entry.path,
                        "*",
                        f"{SUCCESS_MARKER} is a folder, not a file, so the drop is not complete",
                        hint=f"Remove the folder and write {SUCCESS_MARKER} as an empty file once "
                        "every data file is in place.",
                    ),
                )
            marker = version
        elif kind != "file":
            return DropListing(folder=folder, problem=_not_a_file(entry.path, kind))
        elif name.endswith(DATA_SUFFIXES):
            files[name] = version
    return DropListing(folder=folder, files=files, marker=marker)


def refuse_outside_landing(path: str, landing_root: str) -> None:
    """Raises `LandingDataError` when a local file is a link out of the landing zone, or not a
    regular file; returns quietly for a regular file inside it."""
    _, kind = _local_version(path, landing_root)
    if kind != "file":
        raise _not_a_file(path, kind)


def _local_version(path: str, landing_root: str) -> tuple[FileVersion, str]:
    """(version, kind) of a local entry, kind one of file, folder, other; links resolved."""
    link = os.lstat(path)
    target = link
    if stat.S_ISLNK(link.st_mode):
        real = os.path.realpath(path)
        inside = os.path.realpath(landing_root)
        if os.path.commonpath([real, inside]) != inside:
            raise LandingDataError(
                path,
                "*",
                f"is a symbolic link to {real}, outside the landing zone {inside}: files outside "
                "the landing zone are never read",
                hint="Copy the file into the drop instead of linking it, then write the _SUCCESS "
                "marker again.",
            )
        try:
            target = os.stat(path)
        except FileNotFoundError:
            raise LandingDataError(
                path, "*", f"is a symbolic link to {real}, which does not exist"
            ) from None
    kind = (
        "file"
        if stat.S_ISREG(target.st_mode)
        else "folder"
        if stat.S_ISDIR(target.st_mode)
        else "other"
    )
    stamp = ":".join(
        str(v)
        for v in (
            target.st_dev,
            target.st_ino,
            target.st_size,
            target.st_mtime_ns,
            target.st_ctime_ns,
            link.st_ino,
            link.st_ctime_ns,
        )
    )
    changed = max(target.st_ctime_ns, link.st_ctime_ns) / 1e9
    return FileVersion(size=target.st_size, stamp=stamp, changed=changed), kind


def _not_a_file(path: str, kind: str) -> LandingDataError:
    what = "a folder" if kind == "folder" else "not a regular file (a FIFO, socket or device)"
    return LandingDataError(
        path,
        "*",
        f"is {what}: a drop holds data files only",
        hint="Move it out of the landing zone's drop folder, then write the _SUCCESS marker again.",
    )
