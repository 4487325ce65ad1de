"""The lake on S3: moto's S3 server over HTTP on 127.0.0.1, reached by pyarrow, boto3 and s3fs.

The same `Lake` operations as on a local root (landing drops, metadata, partitions, windows),
listings past 1,000 keys, the whole asset graph materialized into a bucket, credentials that never
show up in metadata, logs, errors or the instance, and the deployment switch (`ZEOS_DEPLOYMENT`).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import pickle
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from core_frames import sales_drop
from dagster_aws.s3 import S3Resource
from s3_server import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    S3Server,
    assert_instance_has_no_credentials,
    assert_no_credentials,
    moto_s3_server,
)
from weekly_graph import demand_features, demand_forecast, sales_history

from zeos_forecast.core.contract import validate_sales_drop
from zeos_forecast.datasets.landing import write_landing
from zeos_forecast.datasets.synthetic import generate_panel
from zeos_forecast.pipeline.deployment import open_lake, resources_for_deployment
from zeos_forecast.pipeline.landing_zone import LocalLandingZone, S3LandingZone
from zeos_forecast.pipeline.resources import ComputeResource, LakeResource
from zeos_forecast.storage import LANDING_ARTICLES, LANDING_MERCHANTS, SUCCESS_MARKER, Lake

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

WEEK = dt.date(2025, 6, 2)  # the forecast origin of the graph run
SKUS, HISTORY_WEEKS = 150, 60
WINDOW = [WEEK - dt.timedelta(weeks=i) for i in reversed(range(HISTORY_WEEKS))]
ACTIVE_WEEKS = 13
ASSETS = [sales_history, demand_features, demand_forecast]
DATASET, KEY = "sales_history", "week"
S3_ENV = (
    "ZEOS_S3_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "ZEOS_S3_MAX_ATTEMPTS",
)


def week(i: int) -> dt.date:
    return WEEK + dt.timedelta(weeks=i)


def rows(n: int, start: int = 0) -> pa.Table:
    return pa.table(
        {
            "article_id": [f"A{i}" for i in range(start, start + n)],
            "units_sold": [float(i) for i in range(start, start + n)],
        }
    )


def keys(s3_server: S3Server, bucket: str, prefix: str = "") -> list[str]:
    """Every key under `prefix`, paging with boto3 itself."""
    pages = s3_server.boto3_client().get_paginator("list_objects_v2")
    return [
        item["Key"]
        for page in pages.paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]


def put(s3_server: S3Server, bucket: str, key: str, body: bytes) -> None:
    s3_server.boto3_client().put_object(Bucket=bucket, Key=key, Body=body)


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with moto_s3_server() as server:
        yield server


@pytest.fixture
def bucket(s3_server) -> str:
    """A fresh, empty bucket for one test."""
    return s3_server.create_bucket()


@pytest.fixture
def lake(s3_server, bucket) -> Lake:
    return s3_server.lake_resource(f"s3://{bucket}/lake").open()


# ---- the Lake on S3: same operations, same results as on a local root ----


def test_an_s3_root_opens_a_lake_on_the_configured_endpoint(lake, bucket):
    assert lake.uri == f"s3://{bucket}/lake"
    assert not lake.is_local
    assert lake.path("x") == f"{bucket}/lake/x"
    assert lake.uri_of("demand_forecast") == f"s3://{bucket}/lake/demand_forecast"


def test_a_landing_drop_on_s3_is_listed_with_its_mtime_and_reads_back_as_its_frame(lake):
    drop = sales_drop(WEEK)
    before = dt.datetime.now(dt.UTC).timestamp()

    lake.write_landing_drop(WEEK, drop)

    drops = lake.sales_drop_weeks()
    assert list(drops) == [WEEK]
    assert abs(drops[WEEK] - before) < 60  # S3 keeps whole seconds
    [landing] = lake.read_sales_drop(WEEK)
    assert landing.path == f"s3://{lake.base}/landing/sales/week={WEEK}/part-0.parquet"
    pd.testing.assert_frame_equal(landing.frame, drop, check_dtype=False)


def test_a_drop_on_s3_without_its_marker_is_neither_listed_nor_read(lake, s3_server, bucket):
    buffer = io.BytesIO()
    sales_drop(WEEK).to_parquet(buffer)
    put(s3_server, bucket, f"lake/landing/sales/week={WEEK}/part-0.parquet", buffer.getvalue())
    lake.write_landing_drop(week(1), sales_drop(week(1)))

    assert list(lake.sales_drop_weeks()) == [week(1)]
    with pytest.raises(FileNotFoundError, match=SUCCESS_MARKER) as caught:
        lake.read_sales_drop(WEEK)
    assert f"s3://{bucket}/lake/landing/sales/week={WEEK}" in str(caught.value)


def test_a_drop_on_s3_has_one_identity_for_the_sensor_the_planner_and_the_run(
    lake, s3_server, bucket
):
    # The planners list ETags through boto3 (`list_objects`), the run reads HEAD ETags through
    # pyarrow, a Lake without boto3 HEADs each file: all three must agree, or every run would
    # validate again, or none would see a re-drop.
    lake.write_landing_drop(WEEK, sales_drop(WEEK))
    without_boto = Lake(lake.uri, filesystem=lake.fs)
    listed = lake.sales_drops()[WEEK].identity
    zone = S3LandingZone(root=lake.uri, s3=s3_server.s3_resource())

    assert zone.complete_drops()[WEEK].identity == listed
    assert without_boto.sales_drops()[WEEK].identity == listed
    assert lake.read_drop_snapshot("landing/sales", WEEK).identity == listed

    buffer = io.BytesIO()  # the same key, other content: a re-drop, whatever the times
    sales_drop(WEEK).assign(units_sold=99.0).to_parquet(buffer, index=False)
    put(s3_server, bucket, f"lake/landing/sales/week={WEEK}/part-0.parquet", buffer.getvalue())
    put(s3_server, bucket, f"lake/landing/sales/week={WEEK}/{SUCCESS_MARKER}", b"")

    again = lake.sales_drops()[WEEK].identity
    assert again != listed
    assert lake.read_drop_snapshot("landing/sales", WEEK).identity == again


def test_csv_and_gzipped_csv_drops_on_s3_are_read_as_text_in_name_order(lake, s3_server, bucket):
    folder = f"lake/landing/sales/week={WEEK}"
    text = f"article_id,merchant_id,week,units_sold,availability\n007,M1,{WEEK},3,\n"
    put(s3_server, bucket, f"{folder}/plain.csv", text.encode())
    put(
        s3_server,
        bucket,
        f"{folder}/packed.csv.gz",
        gzip.compress(text.replace("007", "008").encode()),
    )
    put(s3_server, bucket, f"{folder}/README.txt", b"exported by the shop system")
    put(s3_server, bucket, f"{folder}/{SUCCESS_MARKER}", b"")

    files = lake.read_sales_drop(WEEK)

    assert [f.path for f in files] == [
        f"s3://{bucket}/{folder}/packed.csv.gz",
        f"s3://{bucket}/{folder}/plain.csv",
    ]
    assert [f.frame["article_id"].tolist() for f in files] == [["008"], ["007"]]
    assert all(dtype == "object" for f in files for dtype in f.frame.dtypes)
    combined = validate_sales_drop([(f.path, f.frame) for f in files], WEEK)
    assert combined["availability"].tolist() == [1.0, 1.0]


def test_metadata_folders_on_s3_read_back_parquet_and_csv(lake, s3_server, bucket):
    articles = pd.DataFrame({"article_id": ["A1"], "category": ["shoes"]})
    lake.write_landing_table(LANDING_ARTICLES, "articles.parquet", articles)
    put(s3_server, bucket, f"lake/{LANDING_ARTICLES}/more.csv", b"article_id,category\n2,bags\n")

    files = sorted(lake.read_metadata(LANDING_ARTICLES), key=lambda f: f.path)

    assert [f.path.rsplit("/", 1)[1] for f in files] == ["articles.parquet", "more.csv"]
    pd.testing.assert_frame_equal(files[0].frame, articles)
    assert files[1].frame.to_dict("records") == [{"article_id": "2", "category": "bags"}]
    assert lake.read_metadata(LANDING_MERCHANTS) == []


def test_a_partition_on_s3_reads_back_and_a_rewrite_replaces_it(lake):
    frame = pd.DataFrame({"article_id": ["A1", "A2"], "units_sold": [1.5, 0.0]})
    lake.write_partition(DATASET, KEY, WEEK, pa.Table.from_pandas(frame, preserve_index=False))
    pd.testing.assert_frame_equal(lake.read_partition(DATASET, KEY, WEEK), frame)

    path = lake.write_partition(DATASET, KEY, WEEK, rows(3, start=100))

    assert path == f"{lake.base}/{DATASET}/{KEY}={WEEK}/part-0.parquet"
    assert lake.read_partition(DATASET, KEY, WEEK)["article_id"].tolist() == [
        "A100",
        "A101",
        "A102",
    ]
    assert len(lake.read_window(DATASET, KEY, WEEK, WEEK)) == 3


def test_a_failed_partition_write_on_s3_leaves_the_previous_file_whole(lake):
    lake.write_partition(DATASET, KEY, WEEK, rows(4))
    before = lake.partitions(DATASET, KEY)
    # Parquet cannot store this type: the writer fails after the output would have been opened.
    unwritable = pa.table({"gap": pa.array([(1, 2, 3)], pa.month_day_nano_interval())})

    with pytest.raises(pa.ArrowNotImplementedError):
        lake.write_partition(DATASET, KEY, WEEK, unwritable)

    assert lake.read_partition(DATASET, KEY, WEEK)["article_id"].tolist() == [
        "A0",
        "A1",
        "A2",
        "A3",
    ]
    assert lake.partitions(DATASET, KEY) == before


def test_writes_on_s3_create_exactly_the_data_objects_and_no_folder_markers(
    lake, s3_server, bucket
):
    lake.write_landing_drop(WEEK, sales_drop(WEEK))
    lake.write_landing_table(
        LANDING_ARTICLES, "articles.parquet", pd.DataFrame({"article_id": ["A"]})
    )
    lake.write_partition(DATASET, KEY, WEEK, rows(1))
    lake.write_partition(DATASET, KEY, WEEK, rows(2))

    assert sorted(keys(s3_server, bucket)) == [
        f"lake/{LANDING_ARTICLES}/articles.parquet",
        f"lake/landing/sales/week={WEEK}/{SUCCESS_MARKER}",
        f"lake/landing/sales/week={WEEK}/part-0.parquet",
        f"lake/{DATASET}/{KEY}={WEEK}/part-0.parquet",
    ]


def test_parts_written_by_pickled_writers_on_s3_are_read_only_once_published(
    lake, s3_server, bucket
):
    writer = lake.part_writer("demand_features", "forecast_week", WEEK)
    on_a_worker = pickle.loads(pickle.dumps(writer))  # as a Dask task carries it
    parts = [on_a_worker.write(n, [rows(2, start=10 * n)]) for n in range(2)]
    assert lake.partitions("demand_features", "forecast_week") == {}  # not yet published

    lake.publish_parts("demand_features", "forecast_week", WEEK, writer, parts)

    folder = f"lake/demand_features/forecast_week={WEEK}"
    assert sorted(keys(s3_server, bucket, folder)) == [
        f"{folder}/_manifest.json",
        f"{folder}/_parts/{writer.version}/part-00000.parquet",
        f"{folder}/_parts/{writer.version}/part-00001.parquet",
    ]
    read = lake.read_partition("demand_features", "forecast_week", WEEK)
    assert read["article_id"].tolist() == ["A0", "A1", "A10", "A11"]
    window = lake.read_window("demand_features", "forecast_week", WEEK, WEEK)
    assert window["article_id"].tolist() == ["A0", "A1", "A10", "A11"]


def test_partitions_on_s3_list_every_written_value_in_order(lake):
    for i in (3, 0, 1):
        lake.write_partition(DATASET, KEY, week(i), rows(1))
    lake.write_partition("other_dataset", KEY, week(7), rows(1))

    found = lake.partitions(DATASET, KEY)

    assert list(found) == [week(0), week(1), week(3)]
    assert all(isinstance(mtime, float) for mtime in found.values())
    assert lake.partitions("never_written", KEY) == {}


def test_read_window_on_s3_returns_the_window_and_keeps_later_columns(lake):
    for i in range(5):
        table = rows(2, start=10 * i)
        if i >= 3:
            table = table.append_column("promo", pa.array([1.0, 0.0]))
        lake.write_partition(DATASET, KEY, week(i), table)

    window = lake.read_window(DATASET, KEY, week(1), week(3))

    assert sorted(window[KEY].unique()) == [week(1), week(2), week(3)]
    assert sorted(window["article_id"]) == ["A10", "A11", "A20", "A21", "A30", "A31"]
    assert window.sort_values(KEY)["promo"].isna().tolist() == [True] * 4 + [False] * 2
    assert lake.read_window(DATASET, KEY, week(6), week(9)).empty
    assert lake.read_window("never_written", KEY, week(0), week(9)).empty


def test_reading_a_missing_partition_on_s3_names_its_s3_uri(lake, bucket):
    with pytest.raises(FileNotFoundError, match="Materialize sales_history") as caught:
        lake.read_partition(DATASET, KEY, WEEK)

    assert f"s3://{bucket}/lake/{DATASET}/{KEY}={WEEK}/part-0.parquet" in str(caught.value)


def test_listing_pages_through_more_than_a_thousand_keys(lake, s3_server, bucket):
    # 505 drops of a data file and a marker: 1,010 keys, more than one page of 1,000.
    weeks = [dt.date(2000, 1, 3) + dt.timedelta(weeks=i) for i in range(505)]
    objects = [
        (f"lake/landing/sales/week={w}/{name}", body)
        for w in weeks
        for name, body in (("sales.csv", b"article_id\nA1\n"), (SUCCESS_MARKER, b""))
    ]
    client = s3_server.boto3_client()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda o: client.put_object(Bucket=bucket, Key=o[0], Body=o[1]), objects))
    page = client.list_objects_v2(Bucket=bucket, Prefix="lake/landing/sales/")
    assert page["IsTruncated"] and page["KeyCount"] == 1_000  # the server does page

    assert list(lake.sales_drop_weeks()) == weeks
    [last] = lake.read_sales_drop(weeks[-1])
    assert last.frame.to_dict("records") == [{"article_id": "A1"}]
    # The sensor's view (boto3's paginator, ETags) sees every drop too.
    zone = S3LandingZone(root=f"s3://{bucket}/lake", s3=s3_server.s3_resource())
    drops = zone.complete_drops()
    assert list(drops) == weeks
    assert {d.files for d in drops.values()} == {1}


# ---- the asset graph on S3 ----


@dataclass
class MaterializedOnS3:
    bucket: str
    root: str
    lake: Lake
    instance: dg.DagsterInstance
    history: dg.ExecuteInProcessResult
    forecast: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def on_s3(s3_server, fast_forecast, fast_window) -> MaterializedOnS3:
    """Landing drops written into a bucket, then the whole graph materialized there."""
    bucket = s3_server.create_bucket()
    root = f"s3://{bucket}/lake"
    resource = s3_server.lake_resource(root)
    lake = resource.open()
    write_landing(generate_panel(SKUS, HISTORY_WEEKS, WEEK, seed=5), lake)
    with dg.instance_for_test() as instance:
        history = dg.materialize(
            [sales_history],
            resources={"lake": resource, "compute": ComputeResource()},
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": WINDOW[0].isoformat(),
                "dagster/asset_partition_range_end": WEEK.isoformat(),
            },
        )
        forecast = dg.materialize(
            ASSETS,
            selection=[demand_features, demand_forecast],
            partition_key=WEEK.isoformat(),
            resources={"lake": resource, "compute": ComputeResource()},
            instance=instance,
            run_config={
                "ops": {
                    "demand_features": {"config": fast_window},
                    "demand_forecast": {"config": fast_forecast},
                }
            },
        )
        assert history.success and forecast.success
        yield MaterializedOnS3(bucket, root, lake, instance, history, forecast)


def active_skus(lake: Lake) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for offset in range(ACTIVE_WEEKS):
        for landing in lake.read_sales_drop(WEEK - dt.timedelta(weeks=offset)):
            found.update(
                zip(landing.frame["article_id"], landing.frame["merchant_id"], strict=True)
            )
    return found


def test_the_asset_graph_writes_every_dataset_into_the_bucket(on_s3, s3_server):
    assert list(on_s3.lake.partitions("sales_history", "week")) == WINDOW
    assert list(on_s3.lake.partitions("demand_features", "forecast_week")) == [WEEK]
    assert keys(s3_server, on_s3.bucket, "lake/demand_forecast/") == [
        f"lake/demand_forecast/forecast_week={WEEK}/_fan_chart.png",  # the picture, on S3 too
        f"lake/demand_forecast/forecast_week={WEEK}/part-0.parquet",
    ]
    recorded = on_s3.instance.get_materialized_partitions(dg.AssetKey("sales_history"))
    assert recorded == {w.isoformat() for w in WINDOW}


def test_the_forecast_on_s3_has_h_rows_for_every_active_sku(on_s3, fast_forecast):
    forecast = on_s3.lake.read_partition("demand_forecast", "forecast_week", WEEK)
    per_sku = forecast.groupby(["article_id", "merchant_id"]).size()
    assert set(per_sku.index) == active_skus(on_s3.lake)
    assert (per_sku == fast_forecast["horizon"]).all()
    assert set(forecast["run_id"]) == {on_s3.forecast.run_id}


def test_the_forecast_metadata_points_at_the_s3_uri(on_s3):
    [materialization] = [
        m
        for m in on_s3.forecast.asset_materializations_for_node("demand_forecast")
        if m.asset_key == dg.AssetKey("demand_forecast")
    ]
    paths = [
        v.value for v in materialization.metadata.values() if isinstance(v, dg.PathMetadataValue)
    ]
    assert paths and all(p.startswith(f"{on_s3.root}/demand_forecast") for p in paths)


def test_pyarrow_boto3_and_s3fs_read_the_same_forecast_from_the_bucket(on_s3, s3_server):
    key = f"lake/demand_forecast/forecast_week={WEEK}/part-0.parquet"
    by_pyarrow = (
        pads.dataset(
            f"{on_s3.bucket}/lake/demand_forecast",
            filesystem=s3_server.pyarrow_fs(),
            format="parquet",
            partitioning="hive",
        )
        .to_table()
        .to_pandas()
    )
    body = s3_server.boto3_client().get_object(Bucket=on_s3.bucket, Key=key)["Body"].read()
    by_boto3 = pq.read_table(pa.BufferReader(body)).to_pandas()
    with s3_server.s3fs_fs().open(f"{on_s3.bucket}/{key}", "rb") as file:
        by_s3fs = pq.read_table(file).to_pandas()

    assert set(by_pyarrow["forecast_week"].astype(str)) == {WEEK.isoformat()}
    order = ["article_id", "merchant_id", "horizon"]
    expected = by_boto3.sort_values(order, ignore_index=True)
    pd.testing.assert_frame_equal(by_s3fs.sort_values(order, ignore_index=True), expected)
    pd.testing.assert_frame_equal(
        by_pyarrow.drop(columns="forecast_week").sort_values(order, ignore_index=True), expected
    )
    assert len(expected) > 0


def test_credentials_appear_in_no_metadata_run_log_or_instance_file(on_s3):
    for result in (on_s3.history, on_s3.forecast):
        metadata = [
            f"{name}={value.value}"
            for materialization in result.get_asset_materialization_events()
            for name, value in materialization.materialization.metadata.items()
        ]
        assert metadata
        assert_no_credentials(metadata, "materialization metadata")
    assert_instance_has_no_credentials(
        on_s3.instance, [on_s3.history.run_id, on_s3.forecast.run_id]
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("cause", ["missing drop", "unreachable endpoint"])
def test_a_failing_run_on_s3_reveals_no_credentials(s3_server, bucket, cause):
    s3 = s3_server.s3_resource()
    if cause == "unreachable endpoint":
        s3 = s3_server.s3_resource(endpoint_url=f"http://127.0.0.1:{closed_port()}", max_attempts=1)
    resource = LakeResource(root=f"s3://{bucket}/lake", s3=s3)

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [sales_history],
            partition_key=WEEK.isoformat(),
            resources={"lake": resource, "compute": ComputeResource()},
            instance=instance,
            raise_on_error=False,
        )

        assert not result.success
        [failure] = result.get_step_failure_events()
        message = dg.serialize_value(failure.step_failure_data)
        if cause == "missing drop":
            assert f"s3://{bucket}/lake/landing/sales/week={WEEK}" in message
        else:  # the client's own error, with its request, as a failure of the lake's store
            assert f"The S3 store of the lake s3://{bucket}/lake" in message
            assert "during ListObjectsV2" in message
        assert_no_credentials([message], "the step's error")
        assert_instance_has_no_credentials(instance, [result.run_id])


def test_lake_and_resource_reprs_hide_the_credentials(s3_server, bucket):
    resource = s3_server.lake_resource(f"s3://{bucket}/lake")
    # Query options are fine in a root and stay out of `uri`.
    uri = f"s3://{bucket}/lake?region={REGION}&scheme=http&endpoint_override={s3_server.host_port}"
    from_uri = Lake(uri)

    assert from_uri.uri == f"s3://{bucket}/lake"
    assert from_uri.base == f"{bucket}/lake"
    texts = [repr(resource), str(resource), repr(resource.open()), repr(from_uri), from_uri.uri]
    assert_no_credentials(texts, "a repr")
    assert "<redacted>" in repr(resource) and s3_server.endpoint_url in repr(resource)


def test_a_lake_root_carrying_credentials_is_refused_without_repeating_them(bucket):
    # Roots travel into run config, metadata and logs, so a secret inside one is refused.
    uri = f"s3://{ACCESS_KEY}:{SECRET_KEY.replace('/', '%2F')}@{bucket}/lake"

    with pytest.raises(ValueError, match="must not carry credentials") as refused:
        Lake(uri)

    assert_no_credentials([str(refused.value)], "the refusal")


def test_an_unresolved_env_var_is_refused_rather_than_taken_for_a_credential():
    s3 = S3Resource(
        aws_access_key_id=dg.EnvVar("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=dg.EnvVar("AWS_SECRET_ACCESS_KEY"),
    )

    with pytest.raises(RuntimeError, match="unresolved EnvVar"):
        LakeResource(root="s3://some-bucket/lake", s3=s3).open()


# ---- deployments: resources chosen by ZEOS_DEPLOYMENT ----


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("ZEOS_DEPLOYMENT", "ZEOS_LAKE", *S3_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def prod_env(monkeypatch, s3_server: S3Server, root: str) -> None:
    monkeypatch.setenv("ZEOS_DEPLOYMENT", "prod")
    monkeypatch.setenv("ZEOS_LAKE", root)
    monkeypatch.setenv("ZEOS_S3_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)


def test_without_zeos_deployment_the_lake_is_local_under_the_working_directory(clean_env, tmp_path):
    clean_env.chdir(tmp_path)

    resources = resources_for_deployment()

    assert isinstance(resources["lake"], LakeResource)
    assert resources["lake"].root == str(tmp_path / "lake")
    assert isinstance(resources["landing"], LocalLandingZone)
    assert resources["landing"].root == str(tmp_path / "lake")
    assert open_lake().is_local and open_lake().uri == str(tmp_path / "lake")


def test_the_local_deployment_takes_zeos_lake_as_it_is(clean_env, tmp_path):
    clean_env.setenv("ZEOS_DEPLOYMENT", "local")
    clean_env.setenv("ZEOS_LAKE", str(tmp_path / "elsewhere"))

    resources = resources_for_deployment()

    assert resources["lake"].root == resources["landing"].root == str(tmp_path / "elsewhere")


def test_prod_takes_the_lake_root_and_every_s3_setting_from_env_vars(clean_env, s3_server):
    prod_env(clean_env, s3_server, "s3://some-bucket/lake")
    clean_env.setenv("ZEOS_S3_MAX_ATTEMPTS", "7")

    resources = resources_for_deployment()
    lake, landing = resources["lake"], resources["landing"]

    assert isinstance(lake.root, dg.EnvVar) and lake.root.env_var_name == "ZEOS_LAKE"
    assert isinstance(landing, S3LandingZone) and isinstance(landing.root, dg.EnvVar)
    assert repr(landing.s3) == repr(lake.s3)
    s3 = lake.s3
    assert (s3.endpoint_url, s3.region_name) == ("ZEOS_S3_ENDPOINT_URL", "AWS_REGION")
    assert (s3.aws_access_key_id, s3.aws_secret_access_key) == (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    )
    assert all(
        isinstance(v, dg.EnvVar)
        for v in (s3.endpoint_url, s3.region_name, s3.aws_access_key_id, s3.aws_secret_access_key)
    )
    assert s3.max_attempts.env_var_name == "ZEOS_S3_MAX_ATTEMPTS"
    assert s3.aws_session_token is None  # unset: no EnvVar that would fail the launch
    with dg.build_resources({"lake": lake}) as built:
        assert built.lake.s3.max_attempts == 7
        assert built.lake.s3.aws_secret_access_key == SECRET_KEY
    assert_no_credentials([repr(lake), repr(landing)], "the prod resources")


def test_prod_leaves_unset_s3_variables_to_the_aws_default_chain(clean_env):
    clean_env.setenv("ZEOS_DEPLOYMENT", "prod")
    clean_env.setenv("AWS_DEFAULT_REGION", "eu-west-1")

    s3 = resources_for_deployment()["lake"].s3

    assert s3.region_name == "AWS_DEFAULT_REGION"
    assert s3.endpoint_url is s3.aws_access_key_id is s3.aws_secret_access_key is None


def test_an_unknown_deployment_is_rejected_naming_the_known_ones(clean_env):
    clean_env.setenv("ZEOS_DEPLOYMENT", "staging")

    with pytest.raises(ValueError, match="local, prod"):
        resources_for_deployment()


def test_a_prod_deployment_runs_on_s3_configured_by_env_vars_alone(clean_env, s3_server, bucket):
    root = f"s3://{bucket}/lake"
    write_landing(generate_panel(20, 2, WEEK, seed=1), s3_server.lake_resource(root).open())
    prod_env(clean_env, s3_server, root)

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [sales_history],
            partition_key=WEEK.isoformat(),
            resources=resources_for_deployment(),
            instance=instance,
        )

        assert result.success
        assert_instance_has_no_credentials(instance, [result.run_id])
    # What the CLI and launcher call for the same root: the same store, the same settings.
    lake = open_lake(root)
    assert lake.uri == root and not lake.is_local
    assert list(lake.partitions("sales_history", "week")) == [WEEK]
    assert list(open_lake().sales_drop_weeks()) == [week(-1), WEEK]
    # And the sensor's landing zone reaches the same bucket.
    with dg.build_resources({"landing": resources_for_deployment()["landing"]}) as built:
        assert list(built.landing.complete_drops()) == [week(-1), WEEK]
