"""Dependencies whose internals the code touches are pinned to the minor version it was written
against."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def requirement(name: str) -> Requirement:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return next(r for r in map(Requirement, dependencies) if r.name == name)


def test_mlforecast_is_pinned_to_the_installed_minor_version_whose_internals_we_touch():
    pinned = requirement("mlforecast").specifier
    installed = Version(version("mlforecast"))
    next_minor = Version(f"{installed.major}.{installed.minor + 1}.0")

    assert installed in pinned
    assert next_minor not in pinned
