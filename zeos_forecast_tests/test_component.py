"""`DemandForecastComponent` in a user's defs folder: loaded from YAML, two prefixed instances side
by side, the lineage of its configured window, a week materialized on a small lake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest
import yaml
from conftest import make_landing
from dagster.components.testing import create_defs_folder_sandbox

from zeos_forecast import DemandForecastComponent
from zeos_forecast.component import FromEnv
from zeos_forecast.pipeline.partitions import RANGE_END_TAG, RANGE_START_TAG

COMPONENT = "zeos_forecast.DemandForecastComponent"
WEEK = dt.date(2025, 6, 2)
ASSETS = ("sales_history", "demand_features", "demand_forecast", "published_forecast")
ALL_ASSETS = (*ASSETS, "forecast_accuracy")


def defs_yaml(**attributes) -> dict:
    return {"type": COMPONENT, "attributes": attributes}


def load(sandbox, folder: str, attributes: dict) -> Path:
    path = sandbox.defs_folder_path / folder
    path.mkdir(parents=True)
    (path / "defs.yaml").write_text(yaml.safe_dump(defs_yaml(**attributes)))
    return path


def test_the_component_is_the_package_s_own_export():
    import zeos_forecast

    assert "DemandForecastComponent" in dir(zeos_forecast)
    assert issubclass(zeos_forecast.DemandForecastComponent, dg.Component)


def test_two_prefixed_instances_on_two_lakes_load_side_by_side_without_a_clash(tmp_path):
    with create_defs_folder_sandbox() as sandbox:
        load(sandbox, "eu", {"lake": str(tmp_path / "eu"), "key_prefix": "eu"})
        load(sandbox, "us", {"lake": str(tmp_path / "us"), "key_prefix": "us"})
        with sandbox.build_all_defs() as defs:
            dg.Definitions.validate_loadable(defs)
            keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
            jobs = {job.name for job in defs.resolve_all_job_defs()}
            sensors = {sensor.name for sensor in defs.sensors or []}
            schedules = {schedule.name for schedule in defs.schedules or []}
            lakes = {key: defs.resources[key].root for key in ("eu_lake", "us_lake")}

    assert keys == {f"{region}/{asset}" for region in ("eu", "us") for asset in ALL_ASSETS}
    assert {"eu_weekly_forecast", "us_weekly_forecast"} <= jobs
    assert sensors == {"eu_landing_sensor", "us_landing_sensor"}
    assert schedules == {"eu_weekly_forecast_schedule", "us_weekly_forecast_schedule"}
    assert lakes == {"eu_lake": str(tmp_path / "eu"), "us_lake": str(tmp_path / "us")}


def test_each_instance_s_job_selects_only_its_own_assets(tmp_path):
    with create_defs_folder_sandbox() as sandbox:
        load(sandbox, "eu", {"lake": str(tmp_path / "eu"), "key_prefix": "eu"})
        load(sandbox, "us", {"lake": str(tmp_path / "us"), "key_prefix": "us"})
        with sandbox.build_all_defs() as defs:
            selected = defs.resolve_job_def("eu_weekly_forecast").asset_layer.selected_asset_keys

    assert {key.to_user_string() for key in selected} == {f"eu/{a}" for a in ALL_ASSETS}


def test_the_lineage_of_demand_features_is_the_configured_window_of_104_weeks(tmp_path):
    with create_defs_folder_sandbox() as sandbox:
        path = load(
            sandbox,
            "forecasting",
            {"lake": str(tmp_path), "forecast": {"history_weeks": 104}, "first_week": "2020-01-06"},
        )
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            graph = defs.resolve_asset_graph()
            upstream = graph.get_parent_partition_keys_for_child(
                WEEK.isoformat(),
                dg.AssetKey("sales_history"),
                dg.AssetKey("demand_features"),
            ).partitions_subset.get_partition_keys()

    assert len(upstream) == 104
    assert min(upstream) == (WEEK - dt.timedelta(weeks=103)).isoformat()
    assert max(upstream) == WEEK.isoformat()


def test_the_yaml_settings_are_the_launchpad_s_defaults(tmp_path):
    with create_defs_folder_sandbox() as sandbox:
        path = load(
            sandbox,
            "forecasting",
            {"lake": str(tmp_path), "forecast": {"horizon": 8, "quantiles": [0.05, 0.5, 0.95]}},
        )
        with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
            forecast = defs.resolve_assets_def("demand_forecast")
            config = forecast.op.config_schema.config_type.fields["horizon"]

    assert isinstance(component, DemandForecastComponent)
    assert config.default_value == 8
    assert component.instance_settings().forecast.quantiles == (0.05, 0.5, 0.95)


def test_owners_tags_group_and_sensor_come_from_the_yaml(tmp_path):
    attributes = {
        "lake": str(tmp_path),
        "key_prefix": "eu",
        "group_name": "eu_forecasting",
        "owners": ["team:planning"],
        "tags": {"region": "eu"},
        "sensor": {"running": True, "interval_seconds": 300},
    }
    with create_defs_folder_sandbox() as sandbox:
        path = load(sandbox, "forecasting", attributes)
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            spec = defs.resolve_assets_def(dg.AssetKey(["eu", "demand_forecast"])).specs_by_key[
                dg.AssetKey(["eu", "demand_forecast"])
            ]
            sensor = defs.resolve_sensor_def("eu_landing_sensor")

    assert spec.group_name == "eu_forecasting"
    assert spec.owners == ["team:planning"]
    assert spec.tags["region"] == "eu"
    assert sensor.minimum_interval_seconds == 300
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_every_asset_documents_its_columns_and_code_and_the_forecast_its_deadline(tmp_path):
    attributes = {
        "lake": str(tmp_path),
        "forecast": {"quantiles": [0.2, 0.8]},
        "publication": {"deadline_cron": "0 9 * * 3"},
    }
    with create_defs_folder_sandbox() as sandbox:
        path = load(sandbox, "forecasting", attributes)
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            specs = {
                key.to_user_string(): spec
                for asset in defs.resolve_asset_graph().assets_defs
                for key, spec in asset.specs_by_key.items()
            }

    forecast_columns = specs["demand_forecast"].metadata["dagster/column_schema"].columns
    assert [c.name for c in forecast_columns if c.name.startswith("q")] == ["q20", "q80"]
    assert all("dagster/code_references" in spec.metadata for spec in specs.values())
    assert "dagster/column_schema" in specs["sales_history"].metadata
    policy = specs["published_forecast"].freshness_policy
    assert policy is not None and policy.deadline_cron == "0 9 * * 3"


def test_without_publication_the_graph_has_no_published_forecast(tmp_path):
    attributes = {"lake": str(tmp_path), "publication": {"enabled": False}}
    with create_defs_folder_sandbox() as sandbox:
        path = load(sandbox, "forecasting", attributes)
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}

    assert keys == {"sales_history", "demand_features", "demand_forecast", "forecast_accuracy"}


def test_two_instances_sensors_request_their_own_runs_under_their_own_run_keys(tmp_path):
    lake = make_landing(tmp_path / "lake", skus=5, weeks=2, last_week=WEEK)
    first = (WEEK - dt.timedelta(weeks=1)).isoformat()
    requests = {}
    with create_defs_folder_sandbox() as sandbox, dg.instance_for_test() as instance:
        for region in ("eu", "us"):  # the same drops: only the prefix tells them apart
            load(sandbox, region, {"lake": str(lake), "key_prefix": region, "first_week": first})
        with sandbox.build_all_defs() as defs:
            for region in ("eu", "us"):
                sensor = defs.resolve_sensor_def(f"{region}_landing_sensor")
                context = dg.build_sensor_context(
                    instance=instance,
                    resources={f"{region}_landing": defs.resources[f"{region}_landing"]},
                )
                requests[region] = sensor(context).run_requests

    for region in ("eu", "us"):
        (request,) = requests[region]
        assert request.run_key.startswith(f"{region}_sales_history:")
        assert request.asset_selection == [dg.AssetKey([region, "sales_history"])]


def test_credentials_stay_in_the_environment_and_are_refused_as_values(tmp_path):
    s3 = {"region_name": "eu-central-1", "aws_secret_access_key": "{{ env.EU_SECRET }}"}
    with create_defs_folder_sandbox() as sandbox:
        path = load(sandbox, "forecasting", {"lake": "s3://bucket/eu", "s3": s3})
        with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
            s3_resource = defs.resources["lake"].s3

    assert component.s3.aws_secret_access_key == FromEnv(env="EU_SECRET")
    assert isinstance(s3_resource.aws_secret_access_key, dg.EnvVar)
    assert s3_resource.aws_secret_access_key.env_var_name == "EU_SECRET"
    with pytest.raises(Exception, match=r"never written in defs\.yaml"):
        DemandForecastComponent.resolve_from_yaml(
            yaml.safe_dump({"lake": "s3://b/p", "s3": {"aws_secret_access_key": "abc"}})
        )


@pytest.mark.slow
def test_a_component_loaded_from_yaml_materializes_a_week_on_a_small_lake(tmp_path):
    lake = make_landing(tmp_path / "lake", skus=30, weeks=30, last_week=WEEK)
    attributes = {
        "lake": str(lake),
        "key_prefix": "eu",
        "first_week": (WEEK - dt.timedelta(weeks=29)).isoformat(),
        "forecast": {
            "history_weeks": 30,
            "horizon": 4,
            "n_estimators": 10,
            "calibration_weeks": 0,
            "threads": 1,
        },
    }
    first = WEEK - dt.timedelta(weeks=29)
    with (
        create_defs_folder_sandbox() as sandbox,
        dg.instance_for_test() as instance,
    ):
        path = load(sandbox, "forecasting", attributes)
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            job = defs.resolve_job_def("eu_weekly_forecast")
            history = job.execute_in_process(
                instance=instance,
                asset_selection=[dg.AssetKey(["eu", "sales_history"])],
                tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: WEEK.isoformat()},
            )
            week = job.execute_in_process(
                instance=instance,
                partition_key=WEEK.isoformat(),
                asset_selection=[dg.AssetKey(["eu", a]) for a in ASSETS[1:]],
            )

    assert history.success and week.success
    forecast = week.asset_materializations_for_node("eu__demand_forecast")[0].metadata
    assert forecast["dagster/row_count"].value == forecast["rows"].value > 0
    assert forecast["dagster/uri"].value.endswith(f"forecast_week={WEEK}/part-0.parquet")
    checks = week.get_asset_check_evaluations()
    assert checks and all(check.passed for check in checks)
    published = lake / "published_forecast" / f"forecast_week={WEEK}"
    assert any(published.glob("*.parquet"))
