"""Pictures in the metadata and beside the partitions, on a small run through the real assets."""

from __future__ import annotations

import base64
import datetime as dt
import re
import shutil

import dagster as dg
import pandas as pd
import pytest
from weekly_graph import sales_history

from zeos_forecast.core.plots import SkuPicker
from zeos_forecast.pipeline import launch
from zeos_forecast.pipeline.resources import LAKE_TAG, ComputeResource, LakeResource, lake_tags

pytestmark = pytest.mark.slow  # runs Dagster: seconds per test

WEEK = dt.date(2025, 6, 2)
EARLIER = WEEK - dt.timedelta(weeks=1)
SKUS, WEEKS = 80, 40
PNG_HEADER = b"\x89PNG\r\n\x1a\n"
DATA_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def png_in(markdown: str) -> bytes:
    match = DATA_URI.search(markdown)
    assert match, f"no PNG data URI in {markdown[:80]!r}"
    return base64.b64decode(match.group(1))


@pytest.fixture(scope="module")
def runs(landing_factory, tmp_path_factory, fast_forecast):
    """Forecasts of the week before WEEK and of WEEK: the second scores the first."""
    root = tmp_path_factory.mktemp("pictures") / "lake"
    shutil.copytree(landing_factory(SKUS, WEEKS, WEEK, seed=5), root)
    window = {"history_weeks": 30}
    with dg.instance_for_test() as instance:
        earlier = launch.forecast_week(EARLIER, str(root), instance, fast_forecast, window, None)
        latest = launch.forecast_week(WEEK, str(root), instance, fast_forecast, window, None)
        yield root, latest, instance, earlier


def test_the_forecast_metadata_shows_a_decodable_fan_chart(runs):
    _, outcome, _, _ = runs

    chart = outcome.metadata["demand_forecast"]["fan_chart"]

    assert png_in(chart).startswith(PNG_HEADER)


def test_the_fan_chart_is_written_beside_the_forecast_partition_and_readers_skip_it(runs):
    root, _, _, _ = runs
    folder = root / "demand_forecast" / f"forecast_week={WEEK}"

    assert (folder / "_fan_chart.png").read_bytes().startswith(PNG_HEADER)
    # A reader of the whole dataset sees parquet only.
    table = pd.read_parquet(root / "demand_forecast")
    assert len(table) > 0


def test_the_fan_chart_names_the_top_and_the_random_skus_it_draws(runs):
    _, outcome, _, _ = runs

    named = outcome.metadata["demand_forecast"]["fan_chart_skus"]

    assert "top 1 by forecast volume" in named and "random" in named


def test_the_forecast_preview_is_a_typed_table(runs):
    _, outcome, _, _ = runs

    preview = outcome.metadata["demand_forecast"]["preview"]

    columns = {c.name: c.type for c in preview.schema.columns}
    assert columns["forecast"] == "float" and columns["article_id"] == "string"
    assert len(preview.records) > 0


def test_the_calibration_table_covers_every_horizon_of_the_forecast(runs, fast_forecast):
    _, outcome, _, _ = runs

    note = outcome.metadata["demand_forecast"]["calibration"]

    rows = [line for line in note.splitlines() if re.match(r"^\|\s*\d+\s*\|", line)]
    assert len(rows) == fast_forecast["horizon"]


def test_the_accuracy_metadata_shows_both_accuracy_charts_and_writes_them(runs):
    root, outcome, _, _ = runs
    metadata = outcome.metadata["forecast_accuracy"]
    folder = root / "forecast_accuracy" / f"week={WEEK}"

    for name in ("accuracy_by_horizon", "accuracy_over_weeks"):
        assert png_in(metadata[name]).startswith(PNG_HEADER)
        assert (folder / f"_{name}.png").read_bytes().startswith(PNG_HEADER)


def test_accuracy_is_named_and_shown_in_percent_with_what_each_metric_means(runs):
    _, outcome, _, _ = runs
    metadata = outcome.metadata["forecast_accuracy"]

    wape = metadata["WAPE % (zeos)"]
    assert isinstance(wape, float) and wape > 1  # a percentage, not a fraction
    assert "Σ\\|forecast − actual\\| / Σ actual" in metadata["metrics"]


def test_a_history_run_of_many_weeks_draws_them_one_point_per_week(runs):
    _, _, _, earlier = runs

    picture = earlier.metadata["sales_history"]["weekly_sales"]

    assert earlier.history_weeks_validated == 30
    assert png_in(picture).startswith(PNG_HEADER)


def test_every_run_is_tagged_with_its_lake(runs):
    root, outcome, instance, _ = runs

    for run_id in outcome.run_ids:
        assert instance.get_run_by_id(run_id).tags[LAKE_TAG] == str(root)


def test_the_sku_picker_chooses_the_same_skus_whatever_the_batches():
    forecast = pd.DataFrame(
        {
            "article_id": [f"a{i // 2}" for i in range(40)],
            "merchant_id": "m",
            "horizon": [1, 2] * 20,
            "forecast": [float(i // 2) for i in range(40)],
        }
    )
    whole, batched = SkuPicker(top=2, random=2, seed=1), SkuPicker(top=2, random=2, seed=1)

    whole.add(forecast)
    batched.add(forecast.iloc[:20])
    batched.add(forecast.iloc[20:])

    assert whole.chosen() == batched.chosen()
    assert [c.article_id for c in whole.chosen()[:2]] == ["a19", "a18"]
    assert len({c.article_id for c in whole.chosen()}) == 4


def test_a_run_launched_elsewhere_gets_its_lake_tag_from_the_lake_resource(runs):
    root, _, instance, _ = runs

    result = dg.materialize(  # as the UI launches a run: no tags from our launcher
        [sales_history],
        partition_key=WEEK.isoformat(),
        resources={"lake": LakeResource(root=str(root)), "compute": ComputeResource()},
        instance=instance,
    )

    assert instance.get_run_by_id(result.run_id).tags[LAKE_TAG] == str(root)


def test_the_lake_tag_never_holds_credentials():
    tag = lake_tags("s3://AKIAEXAMPLE:secret/key@bucket/prefix")[LAKE_TAG]

    assert "secret" not in tag and "AKIAEXAMPLE" not in tag
    assert tag.endswith("@bucket/prefix")
