"""The real `dg` CLI in a user's new Dagster project: the component is listed, scaffolded, checked
and its definitions listed; then a week is materialized from the command line."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import make_landing

pytestmark = pytest.mark.slow  # each dg command starts Python and loads the definitions

COMPONENT = "zeos_forecast.DemandForecastComponent"
WEEK = dt.date(2025, 6, 2)
DG_TIMEOUT_SECONDS = 240
PYPROJECT = """\
[project]
name = "acme_platform"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["zeos_forecast"]

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "acme_platform"
"""
DEFINITIONS = """\
from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """An empty dg project, `acme_platform`, whose environment has zeos_forecast installed."""
    root = tmp_path_factory.mktemp("acme_platform")
    package = root / "src" / "acme_platform"
    (package / "defs").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "defs" / "__init__.py").write_text("")
    (package / "definitions.py").write_text(DEFINITIONS)
    (root / "pyproject.toml").write_text(PYPROJECT)
    return root


def dg(project: Path, *args: str, dagster_home: Path | None = None) -> str:
    """Runs `dg` in the project with this test's Python environment; returns its stdout."""
    venv = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{venv}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(venv.parent),
        "PYTHONPATH": str(project / "src"),  # the project itself is not installed
    }
    if dagster_home is not None:
        env["DAGSTER_HOME"] = str(dagster_home)
    done = subprocess.run(
        [str(venv / "dg"), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=DG_TIMEOUT_SECONDS,
    )
    assert done.returncode == 0, f"dg {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_dg_lists_the_component_through_the_package_s_entry_point(project):
    listed = json.loads(dg(project, "list", "components", "--json"))

    assert COMPONENT in {item["key"] for item in listed["items"]}


def test_the_readme_section_names_the_commands_these_tests_run():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Use it in your own Dagster project", 1)[1].split("\n## ", 1)[0]

    assert f"dg scaffold defs {COMPONENT} forecasting" in section
    assert "pip install zeos_forecast" in section


def test_dg_scaffold_writes_a_documented_defs_yaml_that_dg_check_accepts(project):
    dg(project, "scaffold", "defs", COMPONENT, "forecasting")
    written = project / "src" / "acme_platform" / "defs" / "forecasting" / "defs.yaml"
    text = written.read_text()

    assert yaml.safe_load(text)["type"] == COMPONENT
    assert "# Weeks ahead to forecast" in text  # every attribute under its description
    assert "  horizon: 12" in text
    assert "All definitions loaded successfully" in dg(project, "check", "defs")


def test_dg_lists_the_assets_checks_sensor_and_schedule_of_two_instances(project, tmp_path):
    defs = project / "src" / "acme_platform" / "defs"
    for region in ("eu", "us"):
        (defs / region).mkdir(exist_ok=True)
        (defs / region / "defs.yaml").write_text(
            yaml.safe_dump(
                {
                    "type": COMPONENT,
                    "attributes": {"lake": str(tmp_path / region), "key_prefix": region},
                }
            )
        )
    listed = json.loads(dg(project, "list", "defs", "--json"))

    assets = {asset["asset_key"] for asset in listed["assets"]}
    assert {"eu/sales_history", "us/sales_history", "eu/published_forecast"} <= assets
    assert "eu/demand_forecast:covers_active_skus" in {c["key"] for c in listed["asset_checks"]}
    assert {"eu_landing_sensor", "us_landing_sensor"} <= {s["name"] for s in listed["sensors"]}
    schedules = {s["name"] for s in listed["schedules"]}
    assert {"eu_weekly_forecast_schedule", "us_weekly_forecast_schedule"} <= schedules
    assert {"eu_lake", "us_lake"} <= {r["name"] for r in listed["resources"]}


def test_dg_launch_materializes_a_week_of_history_from_the_command_line(project, tmp_path):
    lake = make_landing(tmp_path / "lake", skus=20, weeks=3, last_week=WEEK)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    folder = project / "src" / "acme_platform" / "defs" / "weekly"
    folder.mkdir(exist_ok=True)
    (folder / "defs.yaml").write_text(
        textwrap.dedent(f"""\
            type: {COMPONENT}
            attributes:
              lake: {lake}
              key_prefix: weekly
              first_week: "{WEEK - dt.timedelta(weeks=2)}"
            """)
    )
    dg(
        project,
        "launch",
        "--assets",
        "weekly/sales_history",
        "--partition",
        WEEK.isoformat(),
        dagster_home=home,
    )

    assert any((lake / "sales_history" / f"week={WEEK}").glob("*.parquet"))
