"""The fault matrix as a table: filled by tests/local/test_fault_matrix.py, printed at the end of the session.

Each scenario's row travels as a user property of its test report (`PROPERTY`), so the table is complete when
pytest-xdist runs the scenarios in worker processes: the session's process collects the rows from the reports
(`collect`, called by tests/local/conftest.py) and prints them in the matrix's order.
"""

from __future__ import annotations

from typing import Any

from sagepipe import error_names

PROPERTY = "fault_matrix_row"
_ROWS: list[tuple[int, dict[str, str]]] = []


def collect(user_properties: list[tuple[str, Any]]) -> None:
    """Keep the rows a test report carries."""
    _ROWS.extend(value for name, value in user_properties if name == PROPERTY)


def row(order: int, scenario: Any, seen: Any, want: Any) -> tuple[int, dict[str, str]]:
    """The scenario's row (and its place in the matrix), to attach to its report as the PROPERTY user property."""
    record = seen.record or {}
    outcome = record.get("status", "none")
    if record.get("failed_stage"):
        outcome += f" at {record['failed_stage']} ({record.get('error')})"
    late = ""
    if seen.late_results:
        counts: dict[str, int] = {}
        for item in seen.late_results:
            counts[item] = counts.get(item, 0) + 1
        late = ", ".join(f"{count}× {name}" for name, count in counts.items())
    matches = (
        seen.result.status == want.execution
        and seen.attempts == want.attempts
        and (record.get("status") if seen.record else None) == want.record_status
    )
    return (
        order,
        {
            "state": scenario.state,
            "integration": scenario.integration,
            "fault": _describe(scenario),
            "attempts": str(seen.attempts),
            "execution": seen.result.status + (f" ({seen.result.error})" if seen.result.error else ""),
            "record": outcome,
            "notified": ", ".join(item["MessageAttributes"]["status"]["Value"] for item in seen.notifications) or "—",
            "late calls": late or "—",
            "as expected": "yes" if matches else "NO",
        },
    )


def _describe(scenario: Any) -> str:
    fault = scenario.fault()
    if fault.hang:
        return "hangs past its timeout"
    times = "every call" if fault.times is None else f"{fault.times}×"
    lost = ", after the job started" if fault.after_call else ""
    name = error_names.error_name(scenario.integration, str(fault.error))
    return f"{fault.error} → {name} ({scenario.kind}, {times}{lost})"


def render() -> str:
    if not _ROWS:
        return ""
    rows = [cells for _, cells in sorted(_ROWS, key=lambda item: item[0])]
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cells[column] for column in columns) + " |" for cells in rows]
    return "\n".join(lines)
