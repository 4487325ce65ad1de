"""A lake URI that carries credentials is refused, and the credentials appear nowhere.

Every way a user can put a secret into a lake URI (user info, pyarrow's query options, a presigned
URL's signature), through `--lake` and through `ZEOS_LAKE`, for every command that takes a lake:
the command exits 1 with a message that shows the URI redacted; stdout, stderr, the Dagster
instance (runs, events, every file under `DAGSTER_HOME`) and the lake hold no trace of it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from zeos_forecast.cli import main
from zeos_forecast.pipeline.environment import lake_root
from zeos_forecast.redaction import CredentialsInUriError, redact, refuse_credentials
from zeos_forecast.storage import Lake

KEY = "AKIAEXAMPLEKEY7Q2W"
SECRET = "SuperSecret123/xYz+9"
TOKEN = "FwoGZXIvYXdzEXAMPLETOKEN"
SIGNATURE = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
LEAKS = (KEY, SECRET, SECRET.split("/")[0], TOKEN, SIGNATURE)
WEEK = "2025-06-02"
URIS = {
    "user info": f"s3://{KEY}:{SECRET}@bucket/x",
    "user info, no password": f"s3://{KEY}@bucket/x",
    "secret with a slash": f"s3://{KEY}:wJalrXUtnFEMI/{SECRET}@bucket/x",
    "query options": f"s3://bucket/x?region=eu-central-1&access_key={KEY}&secret_key={SECRET}",
    "session token": f"s3://bucket/x?session_token={TOKEN}",
    "presigned": f"https://bucket.s3.amazonaws.com/x?X-Amz-Credential={KEY}&X-Amz-Signature={SIGNATURE}",
}
COMMANDS = {
    "forecast": ["forecast", "--week", WEEK],
    "validate": ["validate", "--week", WEEK],
    "backfill": ["backfill", "--from", WEEK, "--to", WEEK],
    "generate": ["generate", "--skus", "3", "--weeks", "2", "--last-week", WEEK],
    "import": ["import", "oj", "--src", "/nonexistent"],
}


def assert_no_secret(text: str | bytes, where: str) -> None:
    data = text if isinstance(text, bytes) else text.encode()
    for leak in LEAKS:
        assert leak.encode() not in data, f"a secret appears in {where}"


def assert_nothing_stored(home: Path, cwd: Path) -> None:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = list(instance.get_runs())
        assert runs == []  # refused before any run, so no run config holds the URI
    for path in [*home.rglob("*"), *cwd.rglob("*")]:
        if path.is_file():
            assert_no_secret(path.read_bytes(), str(path))


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("form", list(URIS))
def test_a_lake_uri_with_credentials_given_by_lake_is_refused_without_echoing_them(
    command, form, dagster_home, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)

    code = main([*COMMANDS[command], "--lake", URIS[form]])

    out, err = capsys.readouterr()
    assert code == 1
    assert "must not carry credentials" in err
    assert_no_secret(out, "stdout")
    assert_no_secret(err, "stderr")
    assert_nothing_stored(dagster_home, tmp_path)


@pytest.mark.parametrize("command", ["forecast", "validate", "generate"])
@pytest.mark.parametrize("form", list(URIS))
def test_a_lake_uri_with_credentials_given_by_zeos_lake_is_refused_without_echoing_them(
    command, form, dagster_home, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZEOS_LAKE", URIS[form])

    code = main(COMMANDS[command])

    out, err = capsys.readouterr()
    assert code == 1
    assert "ZEOS_LAKE must not carry credentials" in err
    assert_no_secret(out + err, "the output")
    assert_nothing_stored(dagster_home, tmp_path)


def test_the_code_location_refuses_to_load_a_zeos_lake_with_credentials(monkeypatch):
    monkeypatch.setenv("ZEOS_LAKE", URIS["user info"])

    with pytest.raises(CredentialsInUriError) as refused:
        lake_root()

    assert "s3://***@bucket/x" in str(refused.value)
    assert_no_secret(str(refused.value), "the error")


def test_the_lake_itself_refuses_a_root_with_credentials():
    for form, uri in URIS.items():
        with pytest.raises(CredentialsInUriError) as refused:
            Lake(uri)
        assert_no_secret(str(refused.value), form)


def test_a_lake_uri_without_credentials_is_accepted_with_its_harmless_options():
    for uri in ("s3://bucket/x", "s3://bucket/x?region=eu-central-1", "/data/user@host/lake"):
        refuse_credentials(uri)


_key_text = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Nd"), whitelist_characters="_-."),
    min_size=8,
    max_size=24,
)
_secret_text = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="+/=_-."),
    min_size=8,
    max_size=40,
)
_option = st.sampled_from(
    ["access_key", "secret_key", "session_token", "X-Amz-Signature", "password", "token"]
)


@given(user=_key_text, password=_secret_text, option=_option, value=_secret_text)
def test_redact_removes_user_info_and_secret_options_from_any_text(user, password, option, value):
    message = "zeos-forecast forecast: Not a valid bucket name: '{}' (retry later)"
    kept = message.format(f"s3://***@bucket/x?region=eu&{option}=***")
    # A secret spelled like a part of the text that stays (`access_k` in `access_key`) cannot be
    # told from it: such draws say nothing about the redaction.
    assume(all(secret not in kept for secret in (user, password, value)))
    text = message.format(f"s3://{user}:{password}@bucket/x?region=eu&{option}={value}")

    redacted = redact(text)

    assert user not in redacted
    assert password not in redacted
    assert value not in redacted
    assert "s3://***@bucket/x?region=eu&" in redacted
    assert redacted.endswith("(retry later)")


def test_redact_leaves_text_without_secrets_as_it_is():
    text = f"landing/sales/week={dt.date(2025, 6, 2)}/ under s3://bucket/x?region=eu: no marker"
    assert redact(text) == text
