"""The production `dagster.yaml` of docs/deployment.md is a configuration Dagster accepts: its run
queue lets one run of a week through at a time, and its pools one publishing step at a time."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import yaml
from weekly_graph import published_forecast

from zeos_forecast.pipeline.instance import ForecastInstance, InstanceSettings
from zeos_forecast.pipeline.published_forecast import PUBLISHED_FORECAST, published_forecast_asset

DOC = Path(__file__).resolve().parents[1] / "docs" / "deployment.md"


def documented_instance_yaml() -> dict:
    """The YAML block of docs/deployment.md that configures the run coordinator."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    [block] = [b for b in blocks if "run_coordinator:" in b]
    return yaml.safe_load(block)


def documented_instance() -> dg.DagsterInstance:
    config = documented_instance_yaml()
    overrides = {key: config[key] for key in ("run_coordinator", "concurrency")}
    return dg.instance_for_test(overrides=overrides)


def test_the_documented_run_queue_allows_one_run_per_week_at_a_time():
    with documented_instance() as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits

    assert {
        "key": "dagster/partition",
        "value": {"applyLimitPerUniqueValue": True},
        "limit": 1,
    } in limits


def test_the_documented_pools_let_one_publishing_step_run_at_a_time():
    with documented_instance() as instance:
        pools = instance.get_concurrency_config().pool_config

    assert pools.default_pool_limit == 1
    assert pools.pool_granularity.value == "op"  # claimed by the step: CLI runs too


def test_published_forecast_runs_in_a_pool_named_after_it_and_its_instance():
    eu = ForecastInstance(InstanceSettings(key_prefix=("eu",)))

    assert published_forecast.op.pool == PUBLISHED_FORECAST
    assert published_forecast_asset(eu).op.pool == f"eu_{PUBLISHED_FORECAST}"
