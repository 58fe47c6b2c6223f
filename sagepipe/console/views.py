"""The console's pages as data: what each page shows, built from sagepipe.runs.views (shared with the CLI), the
execution's history and the redactor. Templates only lay these out; scripts only set them as text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sagepipe.console.redact import Redactor
from sagepipe.console.sources import Execution, LogTail
from sagepipe.local.graph import StateVisit, execution_path, state_visits
from sagepipe.runs.records import plain
from sagepipe.runs.views import ROW_FIELDS, run_row

PAYLOAD_LIMIT: Final = 64 * 1024
"""A state's input or output is shown up to this many characters (Step Functions allows 256 KiB)."""
MODEL_FIELDS: Final = (
    "artifact_uri",
    "artifact_version_id",
    "artifact_sha256",
    "model_content_sha256",
    "artifact_size_bytes",
    "image_digest",
)


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _time_text(value: Any) -> str | None:
    moment = _moment(value)
    return moment.isoformat(timespec="milliseconds") if moment else None


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= PAYLOAD_LIMIT:
        return text
    return text[:PAYLOAD_LIMIT] + f"\n… ({len(text) - PAYLOAD_LIMIT} more characters not shown)"


def _visit(visit: StateVisit, redactor: Redactor) -> dict[str, Any]:
    entered, exited = _moment(visit.entered_at), _moment(visit.exited_at)
    return {
        "entered": _time_text(visit.entered_at),
        "exited": _time_text(visit.exited_at),
        "seconds": round((exited - entered).total_seconds(), 3) if entered and exited else None,
        "attempts": visit.attempts,
        "input": _cut(redactor.json_text(visit.input)),
        "output": _cut(redactor.json_text(visit.output)),
    }


def _state_status(kind: str, visits: Sequence[StateVisit], failed: bool, running: bool) -> str:
    if not visits:
        return "not entered"
    if failed:
        return "failed"
    if kind == "Fail":
        return "failed the execution"
    if visits[-1].exited_at is None:
        return "running" if running else "did not finish"
    return "succeeded"


def states_view(execution: Execution, redactor: Redactor) -> dict[str, Any]:
    """Every state of the definition: its status in this execution, each visit (times, duration, attempts, input,
    output), its errors and causes, retries and where a Catch took it. Plus the execution's own status."""
    path = execution_path(execution.history)
    visits = state_visits(execution.history)
    raw_states = execution.definition.get("States", {})
    states: Mapping[str, Any] = raw_states if isinstance(raw_states, Mapping) else {}
    caught = dict(path.caught)
    shown: dict[str, Any] = {}
    for name, state in states.items():
        kind = str(state.get("Type", "")) if isinstance(state, Mapping) else ""
        own = visits.get(name, [])
        shown[name] = {
            "name": name,
            "type": kind,
            "comment": str(state.get("Comment", "")) if isinstance(state, Mapping) else "",
            "status": _state_status(kind, own, name in path.failed, path.status == "RUNNING"),
            "visits": [_visit(visit, redactor) for visit in own],
            "attempts": sum(visit.attempts for visit in own),
            "retries": path.retried.get(name, 0),
            "errors": [
                {"error": redactor.text(error.error), "cause": _cut(redactor.json_text(error.cause)) or ""}
                for error in path.errors.get(name, ())
            ],
            "caught_to": caught.get(name),
        }
    return {"status": path.status, "events": len(execution.history), "final_state": path.final_state, "states": shown}


@dataclass(frozen=True)
class LogView:
    kind: str
    text: str
    where: str
    truncated: bool
    local: bool
    console_url: str | None


def log_view(tail: LogTail | None, redactor: Redactor) -> LogView | None:
    if tail is None:
        return None
    return LogView(
        tail.kind,
        redactor.text(tail.text),
        redactor.text(tail.where),
        tail.truncated,
        tail.local_file is not None,
        tail.console_url,
    )


def redacted_record(record: Mapping[str, Any], redactor: Redactor) -> dict[str, Any]:
    """The record with secrets hidden (a commit message, a reason or a cause may hold one)."""
    value: dict[str, Any] = redactor.value(dict(record))
    return value


def rows_json(records: Sequence[Mapping[str, Any]], metric: str, redactor: Redactor) -> list[dict[str, str]]:
    # Only the fields a row shows are redacted (before any cell is cut, so a cut cannot hide a secret's shape).
    return [
        run_row(
            redacted_record({name: record[name] for name in ROW_FIELDS if name in record}, redactor), metric
        ).as_json()
        for record in records
    ]


def model_fields(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(name, str(plain(record[name]))) for name in MODEL_FIELDS if record.get(name) not in (None, "")]


def metrics_of(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    metrics = record.get("metrics")
    if not isinstance(metrics, Mapping):
        return []
    return [(str(name), str(plain(value))) for name, value in sorted(metrics.items())]
