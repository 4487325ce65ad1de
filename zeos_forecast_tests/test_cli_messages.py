"""What the command line says: help with defaults, short errors that say what to do, the commands
the README and docs name, and the minimum history below which a week is not forecast."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import re
from pathlib import Path

import pytest
from local_servers import free_port

from zeos_forecast.cli import commands, main
from zeos_forecast.core.settings import ForecastSettings

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
WEEK = dt.date(2025, 6, 2)
COMMAND = re.compile(r"zeos-forecast((?: [a-z][a-z0-9]*)+)([^`\n]*)")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def run(argv: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the command line, argparse's exits included."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = int(stop.code or 0)
    return code, out.getvalue(), err.getvalue()


def options_of(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


def named_in_documents() -> list[tuple[str, str, list[str]]]:
    """(document, command, options) for every `zeos-forecast ...` line of README.md and docs/."""
    known = commands()
    found = []
    for document in DOCUMENTS:
        for words, rest in COMMAND.findall(document.read_text()):
            names = words.split()
            # The longest run of words that is a command (`bench scale`, then `import` + `oj`).
            command = next(
                (" ".join(names[:n]) for n in range(len(names), 0, -1)
                 if " ".join(names[:n]) in known),
                " ".join(names),
            )  # fmt: skip
            found.append((document.name, command, OPTION.findall(words + rest)))
    return found


def test_every_option_of_every_command_has_help_and_shows_its_default():
    for name, parser in commands().items():
        for action in options_of(parser):
            assert action.help, f"{name} {action.option_strings[0]} has no help"
            flag = action.nargs == 0
            has_default = action.default is not None and action.default is not False
            says_default = "default" in action.help or has_default
            assert flag or action.required or says_default, (
                f"{name} {action.option_strings[0]} does not say its default"
            )


def test_demo_help_shows_each_option_with_its_default():
    code, out, _ = run(["demo", "--help"])

    assert code == 0
    assert re.search(r"--skus SKUS\s+SKUs to generate \(default: 5000\)", out)
    assert re.search(r"--weeks WEEKS\s+.*\(default: 156\)", out)
    assert re.search(r"--seed SEED\s+.*\(default: 0\)", out)


def test_an_abbreviated_option_is_refused_and_the_full_one_suggested():
    code, _, err = run(["demo", "--sku", "100"])

    assert code == 2
    assert "unrecognized arguments: --sku 100 (did you mean --skus?)" in err


def test_a_bad_argument_is_told_in_two_lines_without_the_usage():
    code, _, err = run(["forecast", "--week", "June"])

    assert code == 2
    assert err.splitlines() == [
        "zeos-forecast forecast: argument --week: 'June' is not a date (YYYY-MM-DD)",
        "See `zeos-forecast forecast --help`.",
    ]


def test_a_week_that_is_not_a_monday_is_refused_naming_its_monday():
    code, _, err = run(["forecast", "--week", "2025-06-04"])

    assert code == 2
    assert "2025-06-04 is a Wednesday; weeks are named by their Monday: use 2025-06-02" in err


def test_a_lake_folder_that_does_not_exist_is_named_with_the_commands_that_create_one(tmp_path):
    missing = tmp_path / "no-such-lake"

    code, _, err = run(["forecast", "--lake", str(missing), "--week", WEEK.isoformat()])

    assert code == 1
    assert f"No lake at {missing}: the folder does not exist" in err
    assert f"zeos-forecast generate --lake {missing}" in err
    assert f"zeos-forecast import oj --lake {missing}" in err
    assert len(err.strip().splitlines()) == 2
    assert not missing.exists()


@pytest.mark.slow
def test_a_week_without_a_drop_lists_the_weeks_there_are_and_how_to_add_data(
    landing_factory, dagster_home
):
    root = landing_factory(20, 10, WEEK)
    before = WEEK - dt.timedelta(weeks=10)

    code, _, err = run(["forecast", "--lake", str(root), "--week", before.isoformat()])

    assert code == 1
    first = WEEK - dt.timedelta(weeks=9)
    assert f"No complete sales drop for week {before}" in err
    assert f"Weeks with a drop: {first} .. {WEEK} (10 weeks)" in err
    assert f"--week {WEEK}" in err
    assert "zeos-forecast generate" in err and "zeos-forecast import" in err
    assert len(err.strip().splitlines()) == 2


def test_a_backfill_on_a_webserver_that_does_not_answer_names_it_without_its_credentials(
    landing_factory,
):
    root = landing_factory(5, 2, WEEK)
    port = free_port()
    weeks = ["--from", str(WEEK - dt.timedelta(weeks=1)), "--to", str(WEEK)]
    url = f"http://planner:s3cret@127.0.0.1:{port}"

    code, out, err = run(["backfill", "--lake", str(root), *weeks, "--webserver", url])

    assert code == 1
    assert f"The Dagster webserver at http://***@127.0.0.1:{port} does not answer" in err
    assert "s3cret" not in out + err
    assert "Traceback" not in err


def test_model_settings_with_a_webserver_are_refused_saying_the_deployment_s_apply():
    week = ["--from", str(WEEK), "--to", str(WEEK), "--webserver", "http://127.0.0.1:3000"]

    code, _, err = run(["backfill", *week, "--threads", "1", "--history-weeks", "30"])

    assert code == 2
    assert "--history-weeks, --threads cannot go with --webserver" in err
    assert "the deployment's model settings apply" in err


def test_quiet_and_verbose_are_one_choice():
    code, _, err = run(["forecast", "--week", WEEK.isoformat(), "--quiet", "--verbose"])

    assert code == 2
    assert "not allowed with argument" in err


def test_the_minimum_history_has_a_documented_default():
    assert ForecastSettings().min_history_weeks == 8
    assert "min_history_weeks" in (ROOT / "docs" / "cli.md").read_text()


@pytest.mark.slow
def test_a_week_with_too_little_history_is_refused_and_nothing_is_written_or_published(
    landing_factory, dagster_home
):
    root = landing_factory(30, 3, WEEK)

    code, out, err = run(["forecast", "--lake", str(root), "--week", WEEK.isoformat(), "--quiet"])

    assert code == 1
    assert f"Too little history to forecast from {WEEK}: 3 weeks" in err
    assert "at least 8 are needed (min_history_weeks)" in err
    assert not (root / "demand_features").exists()
    assert not (root / "demand_forecast").exists()
    assert not (root / "published_forecast").exists()
    assert " - INFO - " not in err + out  # --quiet: Dagster's console log shows warnings only


@pytest.mark.slow
def test_the_minimum_history_can_be_lowered_for_a_short_lake(landing_factory, dagster_home):
    root = landing_factory(30, 3, WEEK)
    argv = ["forecast", "--lake", str(root), "--week", WEEK.isoformat(), "--quiet"]

    code, _, err = run([*argv, "--min-history-weeks", "3", "--horizon", "2"])

    assert code == 0, err
    assert (root / "demand_forecast" / f"forecast_week={WEEK}" / "part-0.parquet").exists()


def test_every_command_the_readme_and_docs_name_exists_with_its_options():
    known = commands()
    named = named_in_documents()

    assert len(named) > 20  # the pattern finds the documented commands
    for document, command, options in named:
        assert command in known, f"{document} names `zeos-forecast {command}`"
        parser = known[command]
        accepted = {o for a in parser._actions for o in a.option_strings}
        for option in options:
            assert option in accepted, f"{document}: `zeos-forecast {command}` has no {option}"
