"""The lake on S3 when S3 misbehaves: 5xx answers, dropped connections, slow answers, an outage.

moto's S3 server runs in its own process; a `FaultyProxy` in front of it (127.0.0.1) injects
the faults over real HTTP, and every run reaches the lake through the proxy. Transient faults are
retried by the S3 client (`max_attempts` per request) and, past that, by the steps' Dagster
`RetryPolicy`; an outage that outlasts both fails the run with a message naming the lake and the
endpoint, never the credentials, and publishes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pytest
from faulty_proxy import DROP, FaultyProxy, faulty_proxy
from s3_server import (
    S3Server,
    assert_instance_has_no_credentials,
    assert_no_credentials,
    moto_s3_server,
)
from weekly_graph import (
    demand_features,
    demand_forecast,
    demand_forecast_checks,
    published_forecast,
    sales_history,
)

from zeos_forecast.datasets.landing import write_landing
from zeos_forecast.datasets.synthetic import generate_panel
from zeos_forecast.definitions import defs
from zeos_forecast.pipeline.jobs import WEEKLY_FORECAST
from zeos_forecast.pipeline.resources import ComputeResource, LakeResource
from zeos_forecast.pipeline.retries import STEP_RETRY_POLICY
from zeos_forecast.storage import Lake

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

WEEK = dt.date(2025, 6, 2)
SKUS, HISTORY_WEEKS = 30, 8
HISTORY = [WEEK - dt.timedelta(weeks=i) for i in reversed(range(HISTORY_WEEKS))]
MAX_ATTEMPTS = 4  # per S3 request, the first included
ASSETS = [sales_history, demand_features, demand_forecast, published_forecast]
FORECAST_RUN = [demand_features, demand_forecast, demand_forecast_checks, published_forecast]
PUBLISHED = (
    f"lake/published_forecast/forecast_week={WEEK}/part-0.parquet",
    "lake/published_forecast_latest/part-0.parquet",
)
RETRIED = dg.DagsterEventType.STEP_UP_FOR_RETRY


@dataclass
class Bucket:
    name: str
    root: str
    resource: LakeResource  # through the proxy
    lake: Lake  # straight to moto: what the store really holds, whatever the proxy does


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with moto_s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def module_proxy(s3_server) -> Iterator[FaultyProxy]:
    with faulty_proxy(s3_server.endpoint_url) as proxy:
        yield proxy


@pytest.fixture
def proxy(module_proxy) -> Iterator[FaultyProxy]:
    """The proxy, healthy at the start and the end of every test."""
    module_proxy.heal()
    yield module_proxy
    module_proxy.heal()


def new_bucket(s3_server: S3Server, proxy: FaultyProxy) -> Bucket:
    """A bucket holding generated landing drops, written straight to moto."""
    name = s3_server.create_bucket()
    root = f"s3://{name}/lake"
    direct = s3_server.lake_resource(root).open()
    write_landing(generate_panel(SKUS, HISTORY_WEEKS, WEEK, seed=9), direct)
    s3 = s3_server.s3_resource(endpoint_url=proxy.endpoint_url, max_attempts=MAX_ATTEMPTS)
    return Bucket(name, root, LakeResource(root=root, s3=s3), direct)


def impatient(s3_server: S3Server, proxy: FaultyProxy, bucket: Bucket) -> LakeResource:
    """The bucket through the proxy with two attempts per request: outages outlast the client."""
    s3 = s3_server.s3_resource(endpoint_url=proxy.endpoint_url, max_attempts=2)
    return LakeResource(root=bucket.root, s3=s3)


def run_history(bucket: Bucket, instance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ASSETS,
        selection=[sales_history],
        resources={"lake": bucket.resource, "compute": ComputeResource()},
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": HISTORY[0].isoformat(),
            "dagster/asset_partition_range_end": WEEK.isoformat(),
        },
        raise_on_error=False,
    )


def run_forecast(
    bucket: Bucket, instance, fast_forecast, resource: LakeResource | None = None
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*ASSETS, demand_forecast_checks],
        selection=FORECAST_RUN,
        partition_key=WEEK.isoformat(),
        resources={"lake": resource or bucket.resource, "compute": ComputeResource()},
        instance=instance,
        run_config={
            "ops": {
                "demand_features": {"config": {"history_weeks": HISTORY_WEEKS}},
                "demand_forecast": {"config": fast_forecast},
            }
        },
        raise_on_error=False,
    )


def published_bytes(s3_server: S3Server, bucket: Bucket) -> dict[str, bytes | None]:
    client = s3_server.boto3_client()
    found = {}
    for key in PUBLISHED:
        try:
            found[key] = client.get_object(Bucket=bucket.name, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            found[key] = None
    return found


def retries(instance, result: dg.ExecuteInProcessResult) -> list[str]:
    return [e.step_key for e in instance.all_logs(result.run_id, of_type=RETRIED)]


def assert_published_every_active_sku(bucket: Bucket, run_id: str, horizon: int) -> None:
    forecast = bucket.lake.read_partition("published_forecast", "forecast_week", WEEK)
    assert set(forecast["run_id"]) == {run_id}
    per_sku = forecast.groupby(["article_id", "merchant_id"]).size()
    assert len(per_sku) > 0 and (per_sku == horizon).all()


@pytest.fixture(scope="module")
def published(s3_server, module_proxy, fast_forecast):
    """A bucket whose WEEK was forecast and published without a fault, and its instance."""
    module_proxy.heal()
    bucket = new_bucket(s3_server, module_proxy)
    with dg.instance_for_test() as instance:
        assert run_history(bucket, instance).success
        assert run_forecast(bucket, instance, fast_forecast).success
        yield bucket, instance


def test_every_asset_and_check_of_the_weekly_job_retries_a_failed_step_with_backoff():
    job = defs.resolve_job_def(WEEKLY_FORECAST)
    policies = {node.name: node.definition.retry_policy for node in job.graph.node_dict.values()}
    assert policies and set(policies.values()) == {STEP_RETRY_POLICY}
    assert STEP_RETRY_POLICY.backoff == dg.Backoff.EXPONENTIAL
    assert STEP_RETRY_POLICY.max_retries >= 2


def test_5xx_answers_and_dropped_connections_are_retried_and_the_week_is_published(
    s3_server, proxy, fast_forecast
):
    bucket = new_bucket(s3_server, proxy)
    proxy.fail_every(15, ["503", "500", DROP])

    with dg.instance_for_test() as instance:
        history = run_history(bucket, instance)
        forecast = run_forecast(bucket, instance, fast_forecast)

        assert history.success and forecast.success
    assert min(proxy.faults[k] for k in ("503", "500", DROP)) > 0, proxy.faults
    print(f"\n{proxy.forwarded} requests answered, faults injected: {dict(proxy.faults)}")
    assert_published_every_active_sku(bucket, forecast.run_id, fast_forecast["horizon"])


def test_slow_answers_are_waited_for_and_a_stalled_request_is_sent_again(
    published, proxy, fast_forecast
):
    bucket, instance = published
    proxy.delay_next(3, seconds=0.5)
    proxy.delay_next(1, seconds=5.0)  # longer than the client's request timeout (3 s)

    result = run_forecast(bucket, instance, fast_forecast)

    assert result.success
    assert proxy.faults["delayed"] == 4
    assert_published_every_active_sku(bucket, result.run_id, fast_forecast["horizon"])


def test_a_landing_file_the_store_fails_to_serve_is_retried_not_reported_as_bad_input(
    s3_server, proxy
):
    bucket = new_bucket(s3_server, proxy)
    # Every attempt of the client at the week's file fails: the step fails on the store, and
    # its retry reads the file. Before, this was reported as a corrupt file and never retried.
    proxy.fail_next(MAX_ATTEMPTS, 500, method="GET", path=f"week%3D{WEEK}/part-0.parquet")

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            ASSETS,
            selection=[sales_history],
            partition_key=WEEK.isoformat(),
            resources={"lake": bucket.resource, "compute": ComputeResource()},
            instance=instance,
            raise_on_error=False,
        )

        assert result.success, result.get_step_failure_events()
        assert retries(instance, result) == ["sales_history"]
    assert proxy.faults["500"] == MAX_ATTEMPTS
    assert list(bucket.lake.partitions("sales_history", "week")) == [WEEK]


def test_a_store_that_stops_mid_run_and_comes_back_is_survived_by_the_step_retry(
    s3_server, published, proxy, fast_forecast
):
    bucket, instance = published
    proxy.stop_after(requests=5, seconds=3.0)  # in demand_features, after it read a little

    result = run_forecast(bucket, instance, fast_forecast, impatient(s3_server, proxy, bucket))

    assert result.success, result.get_step_failure_events()
    assert proxy.faults["refused"] == 1
    assert "demand_features" in retries(instance, result)
    assert_published_every_active_sku(bucket, result.run_id, fast_forecast["horizon"])
    assert_instance_has_no_credentials(instance, [result.run_id])


def test_a_persistent_outage_fails_the_run_naming_lake_and_endpoint_and_publishes_nothing(
    s3_server, published, proxy, fast_forecast
):
    bucket, instance = published
    before = published_bytes(s3_server, bucket)
    assert all(before.values())
    proxy.stop_after(requests=5, seconds=None)

    result = run_forecast(bucket, instance, fast_forecast, impatient(s3_server, proxy, bucket))

    assert not result.success
    [failure] = result.get_step_failure_events()
    assert failure.step_key == "demand_features"
    assert retries(instance, result) == ["demand_features"] * STEP_RETRY_POLICY.max_retries
    message = failure.step_failure_data.error.to_string()
    assert f"The S3 store of the lake {bucket.root} (endpoint {proxy.endpoint_url})" in message
    assert "NETWORK_CONNECTION" in message
    assert_no_credentials([message, dg.serialize_value(failure)], "the step's error")
    assert_instance_has_no_credentials(instance, [result.run_id])
    assert published_bytes(s3_server, bucket) == before
