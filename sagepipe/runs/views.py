"""What `sagepipe runs` (a terminal) and `sagepipe console` (a browser) show of the audit trail, computed once for
both: the cells of the runs table, a record's sections, the rows of a comparison, and a metric over runs.

Everything here is plain data (strings, tuples, dataclasses); render.py lays it out as text, the console as HTML
(escaped by Jinja) and JSON (set as text by its scripts). Statuses and fields are not enumerated here beyond what
the records module knows: a status or field a newer pipeline writes (a model gate's REJECTED, `gate`,
`model_package_*`) shows up as it is, without a change here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from sagepipe.runs.diff import Diff, Row
from sagepipe.runs.records import FINAL_STATUSES, duration_seconds, groups, lacks, plain, short_principal, why_it_lacks

HEADLINE_METRIC: Final = "validation:accuracy"
CELL_LIMIT: Final = 60
NO_VALUE: Final = "—"

RUN_STATUSES: Final[tuple[str, ...]] = (
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "STOPPED",
    *sorted(FINAL_STATUSES - {"SUCCEEDED", "FAILED", "STOPPED"}),
)
"""The statuses a filter offers: RUNNING, the usual three, then every other final status records.py knows."""
TRIGGER_KINDS: Final[tuple[str, ...]] = ("code", "data", "manual")
"""docs/audit-record.md, `trigger_kind`."""

FAILED_STATUSES: Final = frozenset({"FAILED", "STOPPED"})
REJECTED_STATUSES: Final = frozenset({"REJECTED"})
UNTRAINED_STATUSES: Final = frozenset({"SKIPPED", "DUPLICATE"})
"""Runs that trained nothing: left out of a metric's history."""


# --------------------------------------------------------------------------------------------------- cells
def cell(value: Any, limit: int = CELL_LIMIT) -> str:
    """One value on one line: maps as k=v, numbers without Decimal noise, long text cut with an ellipsis."""
    if value is None or value == "":
        return NO_VALUE
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, Decimal | int | float):
        text = str(plain(value))
    elif isinstance(value, Mapping):
        text = ", ".join(f"{key}={cell(item, limit)}" for key, item in sorted(value.items()))
    elif isinstance(value, list | tuple):
        text = ", ".join(cell(item, limit) for item in value)
    else:
        text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def duration_text(record: Mapping[str, Any]) -> str:
    seconds = duration_seconds(record)
    if seconds is None:
        return NO_VALUE
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{seconds:.1f}s"


def data_version_text(record: Mapping[str, Any]) -> str:
    key, version = record.get("data_key"), record.get("data_version_id")
    if not key:
        return NO_VALUE
    return f"{cell(key, 40)}@{str(version or '')[:8]}"


def metric_value(record: Mapping[str, Any], metric: str) -> float | None:
    value = (record.get("metrics") or {}).get(metric)
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float):
        return None
    return float(value)


# --------------------------------------------------------------------------------------------------- runs table
def run_headers(metric: str = HEADLINE_METRIC) -> list[str]:
    return ["RUN", "STARTED", "STATUS", "TRIGGER", "WHO", "COMMIT", "DATA VERSION", metric.upper(), "DURATION"]


@dataclass(frozen=True)
class RunRow:
    """One line of the runs table, and the full values its cut cells stand for."""

    run_id: str
    started: str
    status: str
    trigger: str
    who: str
    commit: str
    data_version: str
    metric: str
    duration: str
    commit_id: str
    data_ref: str
    triggered_by: str

    def cells(self) -> list[str]:
        return [
            self.run_id,
            self.started,
            self.status,
            self.trigger,
            self.who,
            self.commit,
            self.data_version,
            self.metric,
            self.duration,
        ]

    def as_json(self) -> dict[str, str]:
        return {name: str(getattr(self, name)) for name in self.__dataclass_fields__}


ROW_FIELDS: Final = (
    "run_id",
    "started_at",
    "finished_at",
    "status",
    "trigger_kind",
    "triggered_by",
    "commit_id",
    "data_key",
    "data_version_id",
    "data_ref",
    "metrics",
)
"""The record fields `run_row` reads."""


def run_row(record: Mapping[str, Any], metric: str = HEADLINE_METRIC) -> RunRow:
    return RunRow(
        run_id=str(record.get("run_id", NO_VALUE)),
        started=str(record.get("started_at", NO_VALUE))[:19].replace("T", " "),
        status=str(record.get("status", NO_VALUE)),
        trigger=str(record.get("trigger_kind", NO_VALUE)),
        who=cell(short_principal(record.get("triggered_by")), 28),
        commit=str(record.get("commit_id") or NO_VALUE)[:12],
        data_version=data_version_text(record),
        metric=cell((record.get("metrics") or {}).get(metric)),
        duration=duration_text(record),
        commit_id=str(record.get("commit_id") or ""),
        data_ref=str(record.get("data_ref") or ""),
        triggered_by=str(record.get("triggered_by") or ""),
    )


# --------------------------------------------------------------------------------------------------- one record
@dataclass(frozen=True)
class FieldView:
    """A record field as a person reads it: its text, or, for a map (metrics, hyperparameters, timings, a gate's
    comparisons), its entries."""

    name: str
    text: str
    entries: tuple[tuple[str, str], ...] | None = None

    @property
    def long(self) -> bool:
        return len(self.text) > 80 or "\n" in self.text


@dataclass(frozen=True)
class SectionView:
    title: str
    fields: tuple[FieldView, ...]


def full_text(value: Any) -> str:
    """A value in full: numbers without Decimal noise, maps and lists as compact JSON-like text."""
    if value is None or value == "":
        return NO_VALUE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal | int | float):
        return str(plain(value))
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={full_text(item)}" for key, item in sorted(value.items()))
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(full_text(item) for item in value)
    return str(value)


def field_view(name: str, value: Any) -> FieldView:
    if isinstance(value, Mapping) and value:
        entries = tuple((str(key), full_text(item)) for key, item in sorted(value.items()))
        return FieldView(name, full_text(value), entries)
    return FieldView(name, full_text(value))


def record_sections(record: Mapping[str, Any]) -> list[SectionView]:
    """The record by section, as `runs show` groups it (fields it does not know under "other")."""
    return [
        SectionView(title, tuple(field_view(name, value) for name, value in fields)) for title, fields in groups(record)
    ]


def lacks_text(record: Mapping[str, Any]) -> str | None:
    """What an older (or unsealed) record lacks, and why; None when it lacks nothing."""
    missing = lacks(record)
    return f"lacks {', '.join(missing)}: {why_it_lacks(record)}" if missing else None


# --------------------------------------------------------------------------------------------------- comparison
def delta_text(row: Row) -> str:
    return "" if row.delta is None else f"{row.delta:+.6f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class DiffRowView:
    section: str
    field: str
    a: str
    b: str
    delta: str
    same: bool


def diff_rows(result: Diff, show_all: bool = False, limit: int = 48) -> list[DiffRowView]:
    """The rows `runs diff` prints: the differences, or every compared field with `show_all`."""
    rows = result.rows if show_all else result.differences
    return [
        DiffRowView(row.section, row.field, cell(row.a, limit), cell(row.b, limit), delta_text(row), row.same)
        for row in rows
    ]


# --------------------------------------------------------------------------------------------------- a metric over runs
@dataclass(frozen=True)
class MetricPoint:
    run_id: str
    started: str
    status: str
    value: float | None
    mark: str
    """succeeded | failed | rejected | other: how the chart draws the run."""
    champion: bool


def mark_of(status: str) -> str:
    if status == "SUCCEEDED":
        return "succeeded"
    if status in FAILED_STATUSES:
        return "failed"
    if status in REJECTED_STATUSES:
        return "rejected"
    return "other"


def metric_points(
    records: Iterable[Mapping[str, Any]], metric: str, champion_package_arn: str | None = None
) -> list[MetricPoint]:
    """The runs that trained (not SKIPPED nor DUPLICATE, not still RUNNING), oldest first, with `metric`'s value
    (None when the run has none: a failed run), how each is marked, and the champion: the run that registered the
    model package the registry holds as the champion (the latest Approved one), when it is among them."""
    trained = [
        record
        for record in records
        if str(record.get("status", "")) not in UNTRAINED_STATUSES and record.get("status") != "RUNNING"
    ]
    trained.sort(key=lambda record: str(record.get("started_at", "")))
    champion = next(
        (
            record.get("run_id")
            for record in trained
            if champion_package_arn and record.get("model_package_arn") == champion_package_arn
        ),
        None,
    )
    return [
        MetricPoint(
            run_id=str(record.get("run_id", "")),
            started=str(record.get("started_at", ""))[:19].replace("T", " "),
            status=str(record.get("status", "")),
            value=metric_value(record, metric),
            mark=mark_of(str(record.get("status", ""))),
            champion=champion is not None and record.get("run_id") == champion,
        )
        for record in trained
    ]


def metric_names(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every metric any of the records has, sorted."""
    names: set[str] = set()
    for record in records:
        metrics = record.get("metrics")
        if isinstance(metrics, Mapping):
            names.update(str(name) for name in metrics)
    return sorted(names)


def statuses_for_filter(seen: Sequence[str] = ()) -> list[str]:
    """RUN_STATUSES, then any status seen in records that it does not list (a newer pipeline's)."""
    return [*RUN_STATUSES, *sorted(set(seen) - set(RUN_STATUSES))]
