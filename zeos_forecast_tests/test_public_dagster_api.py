"""The package uses Dagster's public API only: no module imports from `dagster._`."""

from __future__ import annotations

import re
from pathlib import Path

import zeos_forecast

PACKAGE = Path(zeos_forecast.__file__).parent
PRIVATE_IMPORT = re.compile(r"^\s*(from|import)\s+dagster(_\w+)?\._", re.MULTILINE)


def test_no_module_of_the_package_imports_a_private_dagster_module():
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if PRIVATE_IMPORT.search(path.read_text())
    ]

    assert offenders == []


def test_the_check_would_catch_a_private_import():
    assert PRIVATE_IMPORT.search("from dagster._core.event_api import PartitionKeyFilter")
    assert PRIVATE_IMPORT.search("    import dagster._check as check")
    assert not PRIVATE_IMPORT.search("import dagster as dg")
