"""The code location: `Definitions` load, jobs resolve, and the asset graph shows the lineage."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import subprocess
import sys

import dagster as dg
import pytest
from conftest import make_landing

from zeos_forecast.definitions import defs
from zeos_forecast.demo import latest_complete_week

SALES_HISTORY = dg.AssetKey("sales_history")
DEMAND_FEATURES = dg.AssetKey("demand_features")
DEMAND_FORECAST = dg.AssetKey("demand_forecast")
PUBLISHED_FORECAST = dg.AssetKey("published_forecast")
FORECAST_ACCURACY = dg.AssetKey("forecast_accuracy")
ASSETS = (SALES_HISTORY, DEMAND_FEATURES, DEMAND_FORECAST, PUBLISHED_FORECAST, FORECAST_ACCURACY)
WINDOW_WEEKS = 156


@pytest.fixture(scope="module")
def graph():
    return defs.resolve_asset_graph()


def test_definitions_load_and_validate():
    assert isinstance(defs, dg.Definitions)
    dg.Definitions.validate_loadable(defs)


def test_the_code_location_holds_exactly_the_five_weekly_assets(graph):
    assert set(graph.get_all_asset_keys()) == set(ASSETS)


def test_every_job_resolves():
    jobs = defs.resolve_all_job_defs()
    names = {job.name for job in jobs}
    assert "weekly_forecast" in names
    for name in names:
        job = defs.resolve_job_def(name)
        assert job.name == name
        assert job.graph.node_defs, f"job {name} has no ops"


def test_every_run_executes_its_steps_in_one_process_whoever_starts_it():
    weekly = defs.resolve_job_def("weekly_forecast")
    materialize_from_the_ui = defs.resolve_implicit_global_asset_job_def()

    assert weekly.executor_def.name == dg.in_process_executor.name
    assert materialize_from_the_ui.executor_def.name == dg.in_process_executor.name


def test_the_code_location_loads_without_the_model_libraries():
    # Every webserver, daemon and run process imports it; the forecast step loads them itself.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, zeos_forecast.definitions; "
            "print(' '.join(m for m in ('lightgbm', 'mlforecast', 'sklearn', 'llvmlite') "
            "if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    assert loaded.stdout.strip() == ""


def test_loading_the_code_location_prints_no_warning(tmp_path):
    # What `dagster dev` and every CLI call do: the warnings Dagster would print on each load
    # (mixed backfill policies, beta parameters) are resolved or silenced where they arise.
    code = (
        "import dagster as dg, zeos_forecast.definitions as d; "
        "dg.Definitions.validate_loadable(d.defs); "
        "d.defs.get_repository_def().get_all_jobs(); d.defs.resolve_asset_graph()"
    )
    env = {**os.environ, "ZEOS_LAKE": str(tmp_path / "lake")}

    loaded = subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    )

    assert "Warning" not in loaded.stderr, loaded.stderr


def test_the_partitions_start_at_the_lakes_first_drop_unless_told_otherwise(tmp_path):
    lake = make_landing(tmp_path / "lake", 5, 3, dt.date(2025, 6, 2))
    env = {k: v for k, v in os.environ.items() if k != "ZEOS_FIRST_WEEK"}
    code = (
        "import zeos_forecast.definitions as d; "
        "print(d.defs.resolve_job_def('weekly_forecast').partitions_def.get_first_partition_key())"
    )

    def first_partition(**variables: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env={**env, "ZEOS_LAKE": str(lake), **variables},
        ).stdout.strip()

    assert first_partition() == "2025-05-19"
    assert first_partition(ZEOS_FIRST_WEEK="2024-01-01") == "2024-01-01"


def test_the_weekly_job_selects_the_whole_graph_on_the_weekly_partitions(graph):
    job = defs.resolve_job_def("weekly_forecast")
    assert job.asset_layer.selected_asset_keys == set(ASSETS)
    assert job.partitions_def == graph.get(DEMAND_FORECAST).partitions_def


def test_lineage_runs_from_sales_history_to_features_to_forecast_to_accuracy(graph):
    assert graph.get(SALES_HISTORY).parent_keys == set()
    assert graph.get(DEMAND_FEATURES).parent_keys == {SALES_HISTORY}
    assert graph.get(DEMAND_FORECAST).parent_keys == {DEMAND_FEATURES}
    assert graph.get(SALES_HISTORY).child_keys == {DEMAND_FEATURES, FORECAST_ACCURACY}
    assert graph.get(DEMAND_FORECAST).child_keys == {PUBLISHED_FORECAST, FORECAST_ACCURACY}
    assert graph.get(PUBLISHED_FORECAST).parent_keys == {DEMAND_FORECAST}
    assert graph.get(FORECAST_ACCURACY).parent_keys == {SALES_HISTORY, DEMAND_FORECAST}


def test_the_forecast_checks_block_publication_and_sales_history_is_checked(graph):
    checked = {key.asset_key for key in graph.asset_check_keys}
    forecast_checks = [key for key in graph.asset_check_keys if key.asset_key == DEMAND_FORECAST]

    assert {SALES_HISTORY, DEMAND_FORECAST} <= checked
    assert forecast_checks
    assert all(graph.get_check_spec(key).blocking for key in forecast_checks)


def test_features_depend_on_a_156_week_window_of_sales_history(graph):
    mapping = graph.get_partition_mapping(DEMAND_FEATURES, SALES_HISTORY)
    assert isinstance(mapping, dg.TimeWindowPartitionMapping)
    assert (mapping.start_offset, mapping.end_offset) == (-(WINDOW_WEEKS - 1), 0)

    partitions = graph.get(SALES_HISTORY).partitions_def
    mapped = mapping.get_upstream_mapped_partitions_result_for_partitions(
        partitions.subset_with_partition_keys(["2025-06-02"]), partitions, partitions
    )
    keys = sorted(mapped.partitions_subset.get_partition_keys())
    assert len(keys) == WINDOW_WEEKS
    assert (keys[0], keys[-1]) == ("2022-06-13", "2025-06-02")


def test_accuracy_of_week_w_depends_on_the_forecasts_of_the_52_weeks_before_it(graph):
    mapping = graph.get_partition_mapping(FORECAST_ACCURACY, DEMAND_FORECAST)
    partitions = graph.get(DEMAND_FORECAST).partitions_def
    mapped = mapping.get_upstream_mapped_partitions_result_for_partitions(
        partitions.subset_with_partition_keys(["2025-06-02"]), partitions, partitions
    )
    keys = sorted(mapped.partitions_subset.get_partition_keys())
    assert len(keys) == 52
    assert (keys[0], keys[-1]) == ("2024-06-03", "2025-05-26")


def test_forecast_partition_w_depends_on_features_partition_w_only(graph):
    mapping = graph.get_partition_mapping(DEMAND_FORECAST, DEMAND_FEATURES)
    partitions = graph.get(DEMAND_FEATURES).partitions_def
    mapped = mapping.get_upstream_mapped_partitions_result_for_partitions(
        partitions.subset_with_partition_keys(["2025-06-02"]), partitions, partitions
    )
    assert list(mapped.partitions_subset.get_partition_keys()) == ["2025-06-02"]


@pytest.mark.parametrize("key", ASSETS, ids=lambda key: key.to_user_string())
def test_every_asset_has_a_description_a_group_and_kinds(graph, key):
    node = graph.get(key)
    assert node.description and len(node.description.strip()) > 40
    assert node.group_name and node.group_name != "default"
    assert node.kinds


def test_all_assets_share_one_weekly_partitions_definition(graph):
    definitions = [graph.get(key).partitions_def for key in ASSETS]
    assert all(isinstance(p, dg.TimeWindowPartitionsDefinition) for p in definitions)
    assert definitions[0] == definitions[1] == definitions[2]


def test_weekly_partition_keys_are_mondays_one_week_apart(graph):
    partitions = graph.get(SALES_HISTORY).partitions_def
    keys = partitions.get_partition_keys()
    assert keys[0] == "2018-01-01"
    days = [dt.date.fromisoformat(key) for key in keys]
    assert all(day.weekday() == 0 for day in days)
    assert all(b - a == dt.timedelta(weeks=1) for a, b in itertools.pairwise(days))
    assert partitions.timezone == "UTC"


def test_the_last_partition_is_the_latest_complete_week(graph):
    partitions = graph.get(SALES_HISTORY).partitions_def
    assert partitions.get_last_partition_key() == latest_complete_week().isoformat()


def test_sales_history_runs_a_range_of_weeks_in_one_run(graph):
    policy = graph.get(SALES_HISTORY).backfill_policy
    assert policy is not None
    assert policy.max_partitions_per_run is None
