"""The data of a scale benchmark: a lake of weekly drops and the held-out weeks that follow them.

`W + horizon` weeks are generated (streamed, one chunk of SKUs in memory at a time) ending at the
latest complete Monday; the first `W` become weekly drops in `<folder>/lake/landing`, the last
`horizon` weeks go to `<folder>/holdout.parquet` for scoring. `data.json` is written last: a
folder with it is complete and is reused by the next call with the same sizes and seed.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..core.progress import Report
from ..datasets.landing import write_landing_stream
from ..datasets.synthetic import SyntheticPanel, stream_panel
from ..storage import Lake

__all__ = ["HOLDOUT_SCHEMA", "BenchData", "default_folder", "fresh_runs_folder", "prepare_data"]

DEFAULT_ROOT = Path("/tmp/zeos-bench")
DATA_MARKER = "data.json"  # written last: the folder's data is complete
HOLDOUT_SCHEMA = pa.schema(
    [
        ("article_id", pa.string()),
        ("merchant_id", pa.string()),
        ("week", pa.date32()),
        ("true_demand", pa.float32()),
        ("units_sold", pa.float32()),
        ("availability", pa.float32()),
    ]
)


@dataclass(frozen=True)
class BenchData:
    """A complete benchmark data folder.

    Attributes:
        folder: The folder; `lake`, `holdout` and the run outputs live under it.
        skus, weeks, horizon, seed: What was generated: `weeks` weekly drops of `skus` SKUs,
            then `horizon` held-out weeks.
        origin: The last drop week, the forecast origin.
        history_rows: Sales rows in the drops (one per live SKU and week).
        holdout_rows: Rows of `holdout.parquet`.
        seconds: How long generating took.
        reused: Found complete from an earlier call rather than generated now.
    """

    folder: Path
    skus: int
    weeks: int
    horizon: int
    seed: int
    origin: dt.date
    history_rows: int
    holdout_rows: int
    seconds: float
    reused: bool = False

    @property
    def lake(self) -> Path:
        return self.folder / "lake"

    @property
    def holdout(self) -> Path:
        return self.folder / "holdout.parquet"

    def describe(self) -> dict:
        """JSON-ready fields (without `folder` and `reused`)."""
        fields = {k: v for k, v in asdict(self).items() if k not in ("folder", "reused")}
        return {**fields, "origin": self.origin.isoformat()}


def default_folder(skus: int, weeks: int, seed: int) -> Path:
    """`/tmp/zeos-bench/skus<N>-weeks<W>-seed<S>/`."""
    return DEFAULT_ROOT / f"skus{skus}-weeks{weeks}-seed{seed}"


def prepare_data(
    folder: Path,
    skus: int,
    weeks: int,
    horizon: int,
    seed: int,
    last_week: dt.date,
    report: Report | None = print,
) -> BenchData:
    """Reuses the folder's data when complete and of these sizes; else generates it there.

    Args:
        folder: The data folder (created if missing).
        skus, weeks, horizon, seed: `weeks` weekly drops of `skus` SKUs, `horizon` held out.
        last_week: The last held-out week (a Monday); the origin is `horizon` weeks before it.
        report: Where progress goes.
    """
    wanted = {"skus": skus, "weeks": weeks, "horizon": horizon, "seed": seed}
    found = _complete_data(folder)
    if found is not None and {k: getattr(found, k) for k in wanted} == wanted:
        if report:
            report(f"Reusing the data in {folder} (origin {found.origin}).")
        return found
    if report:
        why = " (its data has other sizes)" if found is not None else ""
        report(
            f"Generating {skus:,} SKUs x {weeks + horizon} weeks ending {last_week} into "
            f"{folder}{why}: {weeks} weekly drops, then {horizon} held-out weeks ..."
        )
    (folder / DATA_MARKER).unlink(missing_ok=True)  # first: incomplete from here on
    shutil.rmtree(folder / "lake", ignore_errors=True)
    (folder / "holdout.parquet").unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    stream = stream_panel(skus, weeks + horizon, last_week, seed=seed)
    holdout_temporary = folder / ".holdout.parquet.tmp"
    holdout_rows = 0
    with pq.ParquetWriter(holdout_temporary, HOLDOUT_SCHEMA) as holdout:

        def write_holdout(chunk: SyntheticPanel) -> None:
            nonlocal holdout_rows
            table = _held_out_rows(chunk, weeks)
            holdout.write_table(table)
            holdout_rows += table.num_rows

        history_rows = write_landing_stream(
            stream, Lake(str(folder / "lake")), weeks, report, write_holdout
        )
    holdout_temporary.rename(folder / "holdout.parquet")
    data = BenchData(
        folder=folder,
        **wanted,
        origin=stream.weeks[weeks - 1].date(),
        history_rows=history_rows,
        holdout_rows=holdout_rows,
        seconds=round(time.perf_counter() - started, 1),
    )
    (folder / DATA_MARKER).write_text(json.dumps(data.describe(), indent=2) + "\n")
    return data


def fresh_runs_folder(data: BenchData, keep: tuple[str, ...] = ()) -> Path:
    """Deletes what earlier runs left: outputs, every derived dataset and the Dagster instance
    (`dagster_home`), but those named in `keep`."""
    for derived in data.lake.iterdir():
        if derived.is_dir() and derived.name not in ("landing", *keep):
            shutil.rmtree(derived)
    runs = data.folder / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    if "dagster_home" not in keep:
        shutil.rmtree(data.folder / "dagster_home", ignore_errors=True)
    runs.mkdir()
    return runs


def _held_out_rows(chunk: SyntheticPanel, first: int) -> pa.Table:
    """Weeks `first..` of the chunk's SKUs that have a row in the drops (the only ones a model
    can forecast), every week whether live or not: a discontinued SKU's actual is 0."""
    rows = np.flatnonzero(chunk.live[:, :first].any(axis=1))
    weeks = chunk.weeks[first:]
    columns = {
        "article_id": np.repeat(chunk.article_id[rows], len(weeks)),
        "merchant_id": np.repeat(chunk.merchant_id[rows], len(weeks)),
        "week": np.tile(weeks.date, len(rows)),
    }
    for name in ("true_demand", "units_sold", "availability"):
        columns[name] = getattr(chunk, name)[rows, first:].ravel()
    return pa.table(columns, schema=HOLDOUT_SCHEMA)


def _complete_data(folder: Path) -> BenchData | None:
    marker = folder / DATA_MARKER
    if not marker.is_file():
        return None
    fields = json.loads(marker.read_text())
    fields["origin"] = dt.date.fromisoformat(fields["origin"])
    return BenchData(folder=folder, reused=True, **fields)
