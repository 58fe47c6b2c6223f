"""The fault matrix as a table: filled by tests/local/test_fault_matrix.py, printed at the end of the session."""

from __future__ import annotations

from typing import Any

from sagepipe import error_names

_ROWS: list[dict[str, str]] = []


def add(scenario: Any, seen: Any, want: Any) -> None:
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
    _ROWS.append(
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
        }
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
    columns = list(_ROWS[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row[column] for column in columns) + " |" for row in _ROWS]
    return "\n".join(lines)
