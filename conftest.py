"""Session-wide reporting hooks. They live at the root, not in tests/local/conftest.py: under pytest-xdist the
session's process collects nothing, so it loads only the conftest files of the test paths and their parents."""

from __future__ import annotations

from typing import Any

import pytest


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep the fault matrix rows the reports carry (in the session's process, also under pytest-xdist)."""
    if report.when == "call" and report.user_properties:
        from tests.local import fault_matrix_report

        fault_matrix_report.collect(list(report.user_properties))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault matrix (tests/local/test_fault_matrix.py) when it ran."""
    from tests.local import fault_matrix_report

    table = fault_matrix_report.render()
    if table:
        terminalreporter.write_sep("=", "fault matrix")
        terminalreporter.write_line(table)
