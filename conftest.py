"""Session-wide reporting hooks, and fixtures for every test. The hooks live at the root, not in
tests/local/conftest.py: under pytest-xdist the session's process collects nothing, so it loads only the conftest
files of the test paths and their parents. (A tests/conftest.py would be the module tests.conftest to mypy, as
container/tests/conftest.py is.)"""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture(scope="session", autouse=True)
def botocore_data_read_once() -> Iterator[None]:
    """Every botocore Session reads botocore's JSON data files (service models, endpoint rules, endpoints.json)
    into its own Loader's cache, and moto gives each `mock_aws` a new default Session: the tests that start moto
    in process spent most of their time parsing the same files again. Here each new Loader starts from one cache
    per data path, filled by the first Session that reads a file.

    The cached documents are the ones botocore already shares, read-only, between the clients of one Session. Each
    Loader keeps its own search paths: boto3 adds its resource models to its Sessions' Loaders, and only boto3
    asks for them."""
    from botocore import loaders, session

    caches: dict[str | None, dict[Any, Any]] = {}
    create_loader = loaders.create_loader

    def create_loader_with_shared_cache(search_path_string: str | None = None) -> loaders.Loader:
        loader = create_loader(search_path_string)
        if not isinstance(loader.__dict__.get("_cache"), dict):  # where botocore's instance_cache keeps them
            raise TypeError("botocore.loaders.Loader no longer keeps its documents in _cache: update conftest.py")
        loader.__dict__["_cache"] = caches.setdefault(search_path_string, {})
        return loader

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(session, "create_loader", create_loader_with_shared_cache)
        yield
