"""`zeos-forecast`: generate data, run the demo, validate, forecast and backfill weeks through the
Dagster assets, backtest, benchmark."""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import json
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, get_type_hints

from .core.compute import ENGINES
from .core.reference import REFERENCE_MODELS
from .core.settings import (
    SETTING_CHOICES,
    WINDOW_SETTINGS,
    ForecastSettings,
    model_settings,
    setting_descriptions,
)
from .datasets import add_data_hint
from .pipeline.console_log import console_log_level, set_console_log_level
from .pipeline.environment import lake_root
from .redaction import redact

__all__ = ["commands", "main"]

DEFAULTS = ForecastSettings()
# Where a setting's description ends its first sentence (its option's help).
_FIRST_SENTENCE = re.compile(r"(?<=[\w)`])\.\s+(?=[A-Z`])")
# Checks that did not pass printed after a run, at most (the latest weeks').
PRINTED_CHECKS = 10
# Dagster's console log level for each choice of --quiet / --verbose.
LOG_LEVELS = {"quiet": "WARNING", "normal": "INFO", "verbose": "DEBUG"}


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that shows every option's default, unless its text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        unset = default is None or default is False or default is argparse.SUPPRESS
        shown = not unset and not action.required
        if shown and "default" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """No abbreviations (`--sku` is not `--skus`), defaults in the help, errors in two lines."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        self.set_defaults(command_parser=self)  # a subcommand's own replaces its parent's

    def refuse_unknown(self, unknown: list[str]) -> NoReturn:
        """Unknown options, named by the command they were given to, with the closest one."""
        known = [o for action in self._actions for o in action.option_strings]
        guesses = [difflib.get_close_matches(u, known, n=1) for u in unknown if u.startswith("-")]
        hint = "".join(f" (did you mean {g[0]}?)" for g in guesses if g)
        self.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\nSee `{self.prog} --help`.\n")


def main(argv: Sequence[str] | None = None) -> int:
    args, unknown = _parser().parse_known_args(argv)
    if unknown:
        args.command_parser.refuse_unknown(unknown)
    log = getattr(args, "log", None)  # commands that launch runs have --quiet / --verbose
    if log != "verbose":
        # Dagster's notes on its own beta and preview APIs, and on how the weekly job mixes
        # backfill policies, are for developers, not users.
        warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview)")
        warnings.filterwarnings("ignore", message=r".*varying BackfillPolicies")
    previous = console_log_level()
    set_console_log_level(LOG_LEVELS[log] if log else previous)
    try:
        return args.command(args)
    except Exception as error:  # a clear message on stderr, not a traceback, for users
        from .pipeline.launch import RunFailed
        from .pipeline.webserver import WebserverError
        from .pipeline.week_lock import WeekAlreadyRunning

        known = RunFailed | WeekAlreadyRunning | WebserverError | ValueError | OSError
        if not isinstance(error, known):
            raise
        print(f"zeos-forecast {args.name}: {redact(str(error))}", file=sys.stderr)
        return 1
    finally:
        set_console_log_level(previous)  # for whatever else runs in this process (tests)


def _demo(args: argparse.Namespace) -> int:
    from .demo import DemoSize, run_demo

    run_demo(args.lake or lake_root(), DemoSize(skus=args.skus, weeks=args.weeks, seed=args.seed))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from .demo import generate, latest_complete_week
    from .pipeline.deployment import open_lake

    lake = open_lake(args.lake)
    last_week = args.last_week or latest_complete_week()
    rows, seconds = generate(lake, args.skus, args.weeks, last_week, args.seed)
    print(
        f"Wrote {rows:,} sales rows ({args.skus:,} SKUs x {args.weeks} weeks ending {last_week}) "
        f"to {lake.uri}/landing in {seconds:.1f} s."
    )
    return 0


def _forecast(args: argparse.Namespace) -> int:
    root = _existing_lake(args.lake)
    from .pipeline.deployment import open_lake
    from .pipeline.launch import dagster_instance, forecast_week

    forecast_config, window_config = _run_configs(args)
    outcome = forecast_week(
        args.week,
        root,
        dagster_instance(),
        forecast_config,
        window_config,
        compute_config=_compute_config(args),
    )
    lake = open_lake(root)
    meta = outcome.metadata.get("demand_forecast", {})
    print(
        f"Forecast for {meta.get('skus_scored', 0):,} SKUs x {meta.get('horizon')} weeks from "
        f"origin {args.week}: {lake.uri_of('demand_forecast')}/forecast_week={args.week}/"
    )
    _print_failed_checks(outcome.failed_checks)
    if args.metadata_json:
        _write_metadata_json(args.metadata_json, outcome.metadata)
    return 0


def _print_failed_checks(lines: list[str]) -> None:
    """Checks that did not pass in runs that succeeded (warnings): on stderr, the exit code 0.

    The latest weeks' last: a backlog's run may fail a warning on many old weeks."""
    shown = lines[-PRINTED_CHECKS:]
    if len(lines) > len(shown):
        print(
            f"zeos-forecast: {len(lines) - len(shown)} more checks did not pass on earlier weeks "
            "(every check is on its run in the Dagster UI); the latest:",
            file=sys.stderr,
        )
    for line in shown:
        print(f"zeos-forecast: {redact(line)}", file=sys.stderr)


def _validate(args: argparse.Namespace) -> int:
    root = _existing_lake(args.lake)
    from .pipeline.launch import dagster_instance, validate_drops

    outcome = validate_drops(args.week, root, dagster_instance())
    runs = len(outcome.run_ids)
    print(
        f"Validated {outcome.history_weeks_validated:,} weekly drops up to {args.week} in "
        f"{runs} run{'s' if runs != 1 else ''}."
        if runs
        else f"Every drop up to {args.week} is validated already: nothing to run."
    )
    _print_failed_checks(outcome.failed_checks)
    if args.metadata_json:
        _write_metadata_json(args.metadata_json, outcome.metadata)
    return 0


def _write_metadata_json(path: str, metadata: dict[str, dict]) -> None:
    """Writes each asset's materialization metadata, the values JSON can hold, to `path`."""
    Path(path).write_text(json.dumps(_json_metadata(metadata), indent=2) + "\n")


def _json_metadata(metadata: dict[str, dict]) -> dict[str, dict]:
    """Each asset's materialization metadata, tables as lists of rows, without the values JSON
    cannot hold."""

    def plain(value):
        records = getattr(value, "records", None)  # a table (the forecast's preview)
        return [dict(r.data) for r in records] if records is not None else value

    def serialisable(value) -> bool:
        try:
            json.dumps(value)
        except Exception:  # TypeError, ValueError, or a Dagster record that refuses iteration
            return False
        return True

    return {
        asset: {key: plain(v) for key, v in values.items() if serialisable(plain(v))}
        for asset, values in metadata.items()
    }


def _backfill(args: argparse.Namespace) -> int:
    if args.webserver:
        return _backfill_on_deployment(args)
    root = _existing_lake(args.lake)
    from .pipeline.backfill import BACKFILL_TAG, new_backfill_id, run_backfill
    from .pipeline.deployment import open_lake
    from .pipeline.launch import dagster_instance

    forecast_config, window_config = _run_configs(args)
    backfill_id = new_backfill_id(args.first, args.last)
    print(f"Backfill {backfill_id}: its runs carry the tag {BACKFILL_TAG}={backfill_id}.")
    weeks = run_backfill(
        root,
        args.first,
        args.last,
        dagster_instance(),
        forecast_config,
        window_config,
        _compute_config(args),
        backfill_id=backfill_id,
    )
    seconds = sum(w.seconds for w in weeks)
    _print_failed_checks([line for w in weeks for line in w.run.failed_checks])
    print(
        f"Backfilled {len(weeks)} week{'s' if len(weeks) != 1 else ''} {args.first} .. "
        f"{args.last} in {seconds:.0f} s ({seconds / len(weeks):.1f} s per week): "
        f"{open_lake(root).uri_of('demand_forecast')}/"
    )
    if args.metadata_json:
        per_week = {
            w.run.week.isoformat(): {
                "started": w.started,
                "finished": w.finished,
                "run_ids": w.run.run_ids,
                "history_weeks_validated": w.run.history_weeks_validated,
                "assets": _json_metadata(w.run.metadata),
            }
            for w in weeks
        }
        Path(args.metadata_json).write_text(json.dumps(per_week, indent=2) + "\n")
    return 0


def _backfill_on_deployment(args: argparse.Namespace) -> int:
    """One Dagster backfill of the range, submitted to the webserver and followed to its end."""
    forecast_config, window_config = _run_configs(args)
    settings = [f"--{name.replace('_', '-')}" for name in {**window_config, **forecast_config}]
    if settings:
        args.command_parser.error(
            f"{', '.join(settings)} cannot go with --webserver: the deployment's model settings "
            "apply. A Dagster backfill gives all its runs one run config, and a later week's "
            "forecast_accuracy runs without the demand_features and demand_forecast steps that "
            "config names, so Dagster would refuse it. Change the deployment's settings, or "
            "backfill here (without --webserver)."
        )
    if args.metadata_json:
        args.command_parser.error(
            "--metadata-json cannot go with --webserver: the runs' metadata is in the "
            "deployment's instance (its UI shows it)."
        )
    root = _existing_lake(args.lake)
    from .pipeline.backfill import (
        BACKFILL_TAG,
        backfill_path,
        checked_weeks,
        follow_backfill,
        new_backfill_id,
        submit_backfill,
    )
    from .pipeline.launch import RunFailed
    from .pipeline.webserver import Webserver

    weeks = checked_weeks(root, args.first, args.last)
    webserver = Webserver(args.webserver)
    tag = new_backfill_id(args.first, args.last)
    backfill_id = submit_backfill(webserver, weeks, tag, _compute_config(args))
    link = webserver.link(backfill_path(backfill_id))
    print(
        f"Backfill {backfill_id} of {len(weeks)} week{'s' if len(weeks) != 1 else ''} launched "
        f"on the deployment, its runs tagged {BACKFILL_TAG}={tag}: {link}"
    )
    try:
        outcome = follow_backfill(webserver, backfill_id, weeks)
    except KeyboardInterrupt:
        print(
            f"zeos-forecast backfill: stopped following backfill {backfill_id}; it goes on in "
            f"the deployment (cancel it there): {link}",
            file=sys.stderr,
        )
        return 130
    done = f"{len(outcome.succeeded)} of {len(weeks)} weeks succeeded"
    if not outcome.done:
        raise RunFailed(
            f"Backfill {backfill_id} is still running after {outcome.seconds:.0f} s ({done}); "
            f"it goes on in the deployment: {link}"
        )
    if outcome.status == "CANCELED":
        raise RunFailed(f"Backfill {backfill_id} was canceled ({done}): {link}")
    if outcome.failed or outcome.error:
        weeks_failed = [
            f"week {week}: "
            + (
                ", ".join(f"run {r} failed ({webserver.link(f'/runs/{r}')})" for r in run_ids)
                or "not run to the end (a week it reads failed)"
            )
            for week, run_ids in outcome.failed.items()
        ]
        raise RunFailed(
            "\n".join(
                [
                    f"Backfill {backfill_id} ended {outcome.status} ({done}): {link}",
                    *([outcome.error] if outcome.error else []),
                    *weeks_failed,
                ]
            )
        )
    print(
        f"Backfilled {len(weeks)} week{'s' if len(weeks) != 1 else ''} {args.first} .. "
        f"{args.last} in {outcome.seconds:.0f} s on the deployment: {link}"
    )
    return 0


def _backtest(args: argparse.Namespace) -> int:
    root = _existing_lake(args.lake)
    from .pipeline.backtest import run_backtest
    from .pipeline.launch import dagster_instance

    forecast_config, window_config = _run_configs(args)
    result = run_backtest(
        root,
        args.first,
        args.last,
        dagster_instance(),
        every=args.every,
        forecast_config=forecast_config,
        window_config=window_config,
        horizons=args.horizons,
        compute_config=_compute_config(args),
        reference=args.reference,
    )
    print(result.as_text())
    return 0


def _bench_scale(args: argparse.Namespace) -> int:
    from .bench.scale import BenchFailed, ScaleOptions, prepare_scale_data, run_scale

    options = ScaleOptions(
        skus=args.skus,
        weeks=args.weeks,
        horizon=args.horizon,
        data=args.data,
        seed=args.seed,
        skip_baseline=args.skip_baseline,
        reuse_backlog=args.reuse_backlog,
        compute=_compute_config(args),
        n_estimators=args.n_estimators,
        threads=args.threads,
        quantile_estimators=args.quantile_estimators,
    )
    if args.data_only:
        data = prepare_scale_data(options)
        print(f"Data ready in {data.folder} (origin {data.origin}, {data.history_rows:,} rows).")
        return 0
    try:
        run_scale(options)
    except BenchFailed as error:
        print(f"zeos-forecast bench scale: {error}", file=sys.stderr)
        return 1
    return 0


def _bench_backfill(args: argparse.Namespace) -> int:
    from .bench.backfill import BackfillOptions, prepare_backfill_data, run_backfill
    from .bench.scale import BenchFailed

    options = BackfillOptions(
        skus=args.skus,
        weeks=args.weeks,
        history_weeks=args.history_weeks,
        burst=args.burst,
        data=args.data,
        seed=args.seed,
        engine=args.engine,
        n_estimators=args.n_estimators,
        threads=args.threads,
    )
    if args.data_only:
        bench = prepare_backfill_data(options)
        print(
            f"Data ready in {bench.data.folder}: backfill {bench.first_backfilled} .. "
            f"{bench.last_backfilled}, {args.burst} drops held back for the burst."
        )
        return 0
    try:
        run_backfill(options)
    except BenchFailed as error:
        print(f"zeos-forecast bench backfill: {error}", file=sys.stderr)
        return 1
    return 0


def _bench_contention(args: argparse.Namespace) -> int:
    from .bench.contention import ContentionFailed, ContentionOptions, run_contention

    options = ContentionOptions(
        skus=args.skus, weeks=args.weeks, busy=args.busy, data=args.data, seed=args.seed
    )
    try:
        run_contention(options)
    except (ContentionFailed, ValueError) as error:
        print(f"zeos-forecast bench contention: {error}", file=sys.stderr)
        return 1
    return 0


def _run_configs(args: argparse.Namespace) -> tuple[dict, dict]:
    """Run config of `demand_forecast` and `demand_features` from the model options given."""
    forecast_config = {
        name: getattr(args, name)
        for name in model_settings()
        if getattr(args, name, None) is not None
    }
    window_config = {
        name: getattr(args, name) for name in WINDOW_SETTINGS if getattr(args, name) is not None
    }
    if getattr(args, "censored_as_demand", False):
        window_config["censored_as_demand"] = True
    return forecast_config, window_config


def _compute_config(args: argparse.Namespace) -> dict:
    """Config of the `compute` resource (engine, memory budget, Dask) from the options given."""
    values = {
        "engine": args.engine,
        "max_memory_gb": args.max_memory_gb,
        "dask_address": args.dask_address,
        "workers": args.workers,
    }
    return {k: v for k, v in values.items() if v is not None}


def _existing_lake(lake: str | None) -> str:
    """The lake root to read; a local one must exist (an S3 prefix is found by listing it)."""
    root = lake or lake_root()
    if "://" not in root and not Path(root).is_dir():
        raise FileNotFoundError(
            f"No lake at {root}: the folder does not exist (--lake, else $ZEOS_LAKE, else ./lake)."
            "\nPoint --lake at a folder holding landing/, or create one with " + add_data_hint(root)
        )
    return root


def _import(args: argparse.Namespace) -> int:
    from .datasets import dominicks, vn2
    from .datasets.importing import default_source
    from .pipeline.deployment import open_lake

    folder, importer = {
        "oj": (dominicks.SOURCE_FOLDER, dominicks.import_dominicks),
        "vn2": (vn2.SOURCE_FOLDER, vn2.import_vn2),
    }[args.dataset]
    src = Path(args.src) if args.src else default_source(folder)
    summary = importer(src, open_lake(args.lake or lake_root()), report=print)
    print(summary.describe())
    return 0


def commands() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser by its name as typed (`forecast`, `bench scale`)."""
    found: dict[str, argparse.ArgumentParser] = {}

    def visit(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found[f"{prefix}{name}"] = sub
                    visit(sub, f"{prefix}{name} ")

    visit(_parser(), "")
    return found


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="zeos-forecast", description=__doc__)
    commands = parser.add_subparsers(dest="name", required=True)

    import_ = commands.add_parser(
        "import",
        help="write a public retail dataset (Dominick's orange juice, VN2) into a landing zone",
    )
    import_.add_argument(
        "dataset",
        choices=["oj", "vn2"],
        help="oj: Dominick's orange juice (weekly, 83 stores); vn2: the VN2 inventory challenge",
    )
    import_.add_argument(
        "--src",
        help="folder of the source files (default: $ZEOS_SHARED_DATA/<dataset folder>, "
        "else ../shared/data/dominicks_oj or ../shared/data/vn2)",
    )
    import_.add_argument("--lake", help="lake root (default: $ZEOS_LAKE or ./lake)")
    import_.set_defaults(command=_import)

    demo = commands.add_parser(
        "demo",
        help="generate data into a local lake and forecast the "
        "latest complete week through Dagster",
    )
    demo.add_argument("--lake", help="lake root (default: $ZEOS_LAKE or ./lake)")
    demo.add_argument("--skus", type=int, default=5_000, help="SKUs to generate")
    demo.add_argument("--weeks", type=int, default=156, help="weekly drops of history to generate")
    demo.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    _log_options(demo)
    demo.set_defaults(command=_demo)

    generate = commands.add_parser(
        "generate", help="write synthetic weekly drops into a landing zone"
    )
    generate.add_argument("--skus", type=int, required=True, help="SKUs to generate (required)")
    generate.add_argument(
        "--weeks", type=int, required=True, help="weekly drops to write (required)"
    )
    generate.add_argument("--lake", help="lake root (default: $ZEOS_LAKE or ./lake)")
    generate.add_argument(
        "--last-week", type=_monday, help="last week (Monday); default: the latest complete week"
    )
    generate.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    generate.set_defaults(command=_generate)

    forecast = commands.add_parser("forecast", help="materialize the asset graph for one week")
    forecast.add_argument("--lake", help="lake root (default: $ZEOS_LAKE or ./lake)")
    forecast.add_argument(
        "--week",
        type=_monday,
        required=True,
        help="origin week: the Monday of the last observed week",
    )
    forecast.add_argument(
        "--metadata-json",
        help="also write each asset's materialization metadata (timings, rows) to this file "
        "(default: not written)",
    )
    _model_options(forecast)
    _log_options(forecast)
    forecast.set_defaults(command=_forecast)

    validate = commands.add_parser(
        "validate",
        help="validate (materialize sales_history for) every weekly drop up to a week that is "
        "new or dropped again",
    )
    validate.add_argument("--lake", help="lake root (default: $ZEOS_LAKE or ./lake)")
    validate.add_argument(
        "--week", type=_monday, required=True, help="last week to validate (a Monday)"
    )
    validate.add_argument(
        "--metadata-json",
        help="also write the runs' materialization metadata to this file (default: not written)",
    )
    _log_options(validate)
    validate.set_defaults(command=_validate)

    backfill = commands.add_parser(
        "backfill",
        help="forecast and publish every week of a range, one run per week (weeks that exist "
        "are replaced)",
    )
    backfill.add_argument("--lake", help="lake root (default: $ZEOS_LAKE or ./lake)")
    backfill.add_argument("--from", dest="first", type=_monday, required=True, help="first week")
    backfill.add_argument("--to", dest="last", type=_monday, required=True, help="last week")
    backfill.add_argument(
        "--metadata-json",
        help="also write each week's start and end (epoch seconds), run ids and materialization "
        "metadata to this file (default: not written)",
    )
    backfill.add_argument(
        "--webserver",
        help="a deployment's Dagster webserver, e.g. http://127.0.0.1:3000: submit one Dagster "
        "backfill of the weeks there (its daemon runs them with the deployment's settings; the "
        "engine options apply) and follow it (default: run the weeks here)",
    )
    _model_options(backfill)
    _log_options(backfill)
    backfill.set_defaults(command=_backfill)

    backtest = commands.add_parser(
        "backtest",
        help="forecast past origin weeks as of themselves and score them against what sold",
    )
    backtest.add_argument("--lake", help="lake root (default: $ZEOS_LAKE or ./lake)")
    backtest.add_argument("--from", dest="first", type=_monday, required=True, help="first origin")
    backtest.add_argument("--to", dest="last", type=_monday, required=True, help="last origin")
    backtest.add_argument("--every", type=int, default=1, help="weeks between origins")
    backtest.add_argument(
        "--horizons", type=_ints, help="horizons to summarize, e.g. 2,3 (default: all)"
    )
    backtest.add_argument(
        "--censored-as-demand",
        action="store_true",
        help="take stockout-week sales as demand (to compare with stockout-aware training; "
        "default: off)",
    )
    backtest.add_argument(
        "--reference",
        action="append",
        choices=REFERENCE_MODELS,
        help="also score this reference on the same origins (tsperf_lightgbm: Microsoft "
        "TSPerf's LightGBM recipe for Dominick's orange juice, 940 trees per origin; "
        "hindsight_level: not a forecast, each SKU's mean over the scored weeks, known in "
        "hindsight: the error a perfect level per SKU leaves; default: none; may be repeated)",
    )
    _model_options(backtest)
    _log_options(backtest)
    backtest.set_defaults(command=_backtest)

    bench = commands.add_parser(
        "bench", help="benchmarks (see README: Benchmark: scale, Reliability: the figures)"
    )
    benchmarks = bench.add_subparsers(dest="benchmark", required=True)
    scale = benchmarks.add_parser(
        "scale",
        help="time and score our weekly run against plain mlforecast on generated data, each "
        "in its own process",
    )
    scale.add_argument("--skus", type=int, required=True, help="SKUs to generate (required)")
    scale.add_argument(
        "--weeks", type=int, required=True, help="weekly drops of history (required)"
    )
    scale.add_argument("--horizon", type=int, default=12, help="weeks forecast and held out")
    scale.add_argument(
        "--data",
        type=Path,
        help="data folder, reused when complete (default /tmp/zeos-bench/skus<N>-weeks<W>-seed<S>)",
    )
    scale.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    scale.add_argument("--skip-baseline", action="store_true", help="run ours only (default: both)")
    scale.add_argument(
        "--reuse-backlog",
        action="store_true",
        help="keep sales_history from an earlier run on this data when it holds every week "
        "before the origin (the backlog is not ingested or measured again; default: off)",
    )
    scale.add_argument(
        "--data-only",
        action="store_true",
        help="generate (or find) the data, then stop: to prepare a large size ahead of the runs "
        "(default: off)",
    )
    _engine_options(scale)  # passed to our `forecast` run as they are
    scale.add_argument("--n-estimators", type=int, default=100, help="trees")
    scale.add_argument("--threads", type=int, default=2, help="threads per side")
    scale.add_argument(
        "--quantile-estimators",
        type=int,
        help="trees of our quantile models (default: the forecast's; the baseline has none)",
    )
    scale.set_defaults(command=_bench_scale)

    backfill_bench = benchmarks.add_parser(
        "backfill",
        help="the backlog, a backfill of many weeks (peak memory per week), then a burst of "
        "drops for the sensor, each in its own process",
    )
    backfill_bench.add_argument(
        "--skus", type=int, required=True, help="SKUs to generate (required)"
    )
    backfill_bench.add_argument("--weeks", type=int, default=52, help="weeks backfilled")
    backfill_bench.add_argument(
        "--history-weeks",
        type=int,
        default=DEFAULTS.history_weeks,
        help="training window, and the weeks of drops before the first backfilled week "
        f"(default {DEFAULTS.history_weeks})",
    )
    backfill_bench.add_argument(
        "--burst", type=int, default=20, help="drops that land at once for the sensor"
    )
    backfill_bench.add_argument(
        "--data",
        type=Path,
        help="data folder, reused when complete (default /tmp/zeos-bench/backfill-skus<N>-"
        "history<H>-weeks<W>-burst<B>-seed<S>)",
    )
    backfill_bench.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    backfill_bench.add_argument(
        "--data-only",
        action="store_true",
        help="generate (or find) the data, then stop (default: off)",
    )
    backfill_bench.add_argument("--engine", choices=ENGINES, help="default: auto")
    backfill_bench.add_argument("--n-estimators", type=int, help=f"default {DEFAULTS.n_estimators}")
    backfill_bench.add_argument("--threads", type=int, help="0 = all cores (default)")
    backfill_bench.set_defaults(command=_bench_backfill)

    contention = benchmarks.add_parser(
        "contention",
        help="the weekly run's training quiet and with other processes busy on the cores: the "
        "previous default (LightGBM on all cores) against ours, each in its own process",
    )
    contention.add_argument("--skus", type=int, default=300, help="SKUs to generate (default 300)")
    contention.add_argument(
        "--weeks", type=int, default=104, help="weekly drops of history (default 104)"
    )
    contention.add_argument(
        "--busy", type=int, default=1, help="cores kept busy during the busy runs (default 1)"
    )
    contention.add_argument(
        "--data",
        type=Path,
        help="data folder, reused when complete (default /tmp/zeos-bench/skus<N>-weeks<W>-seed<S>)",
    )
    contention.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    contention.set_defaults(command=_bench_contention)
    return parser


def _model_options(command: argparse.ArgumentParser) -> None:
    """An option per setting of the run config, each with `ForecastSettings`' type, default and
    description (`--history-weeks`, `--horizon`, `--quantiles`, ...), then the engine's."""
    hints = get_type_hints(ForecastSettings)
    descriptions = setting_descriptions()
    for name in (*WINDOW_SETTINGS, *model_settings()):
        default = getattr(DEFAULTS, name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        text = _FIRST_SENTENCE.split(descriptions[name], maxsplit=1)[0].rstrip(".")
        options: dict = {"help": f"{text} (default {shown})".replace("%", "%%")}
        if hints[name] is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, tuple):
            options["type"] = _ints if hints[name].__args__[0] is int else _floats
        else:
            options["type"] = hints[name]
            options["choices"] = SETTING_CHOICES.get(name)
        command.add_argument("--" + name.replace("_", "-"), **options)
    _engine_options(command)


def _engine_options(command: argparse.ArgumentParser) -> None:
    """The `compute` resource's options (`_compute_config` reads them back)."""
    command.add_argument(
        "--engine",
        choices=ENGINES,
        help="memory, sharded (SKU shards, bounded memory), dask (shards on a Dask cluster) or "
        "auto (default: memory while the window fits the budget)",
    )
    command.add_argument(
        "--max-memory-gb", type=float, help="memory budget in GiB (default: half of this machine's)"
    )
    command.add_argument(
        "--dask-address", help="Dask scheduler, e.g. tcp://host:8786 (default: a LocalCluster)"
    )
    command.add_argument(
        "--workers",
        type=int,
        help="shards worked on at once: threads of sharded, LocalCluster workers of dask "
        "(default: one per core)",
    )


def _monday(text: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from error
    if day.weekday() != 0:
        monday = day - dt.timedelta(days=day.weekday())
        raise argparse.ArgumentTypeError(
            f"{text} is a {day:%A}; weeks are named by their Monday: use {monday}"
        )
    return day


def _log_options(command: argparse.ArgumentParser) -> None:
    """--quiet / --verbose: how much of Dagster's console log the runs print."""
    levels = command.add_mutually_exclusive_group()
    levels.add_argument(
        "--quiet",
        dest="log",
        action="store_const",
        const="quiet",
        help="print only Dagster's warnings and errors, and the result (default: its INFO log)",
    )
    levels.add_argument(
        "--verbose",
        dest="log",
        action="store_const",
        const="verbose",
        help="print Dagster's DEBUG log too: every step and event (default: its INFO log)",
    )
    command.set_defaults(log="normal")


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


if __name__ == "__main__":
    sys.exit(main())
