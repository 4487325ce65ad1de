"""The production `dagster.yaml` of docs/deployment.md is a configuration Dagster accepts, and its
run queue lets one run of a week through at a time."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import yaml

DOC = Path(__file__).resolve().parents[1] / "docs" / "deployment.md"


def documented_instance_yaml() -> dict:
    """The YAML block of docs/deployment.md that configures the run coordinator."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    [block] = [b for b in blocks if "run_coordinator:" in b]
    return yaml.safe_load(block)


def test_the_documented_run_queue_allows_one_run_per_week_at_a_time():
    config = documented_instance_yaml()

    with dg.instance_for_test(overrides={"run_coordinator": config["run_coordinator"]}) as instance:
        limits = instance.run_coordinator.get_run_queue_config().tag_concurrency_limits

    assert {
        "key": "dagster/partition",
        "value": {"applyLimitPerUniqueValue": True},
        "limit": 1,
    } in limits
