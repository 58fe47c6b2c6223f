"""Human output of `sagepipe runs`: aligned tables and titled sections, plain text (no terminal library)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sagepipe.runs.diff import Diff
from sagepipe.runs.records import duration_seconds, groups, lacks, links, plain, short_principal, why_it_lacks
from sagepipe.runs.verify import Verification

HEADLINE_METRIC = "validation:accuracy"
CELL_LIMIT = 60


def cell(value: Any, limit: int = CELL_LIMIT) -> str:
    """One value on one line: maps as k=v, numbers without Decimal noise, long text cut with an ellipsis."""
    if value is None or value == "":
        return "—"
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


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns as wide as their widest cell, two spaces apart, a rule under the header."""
    widths = [max([len(header), *(len(row[index]) for row in rows)]) for index, header in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(value.ljust(width) for value, width in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["─" * width for width in widths]), *(line(row) for row in rows)])


def _duration(record: Mapping[str, Any]) -> str:
    seconds = duration_seconds(record)
    if seconds is None:
        return "—"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{seconds:.1f}s"


def _data_version(record: Mapping[str, Any]) -> str:
    key, version = record.get("data_key"), record.get("data_version_id")
    if not key:
        return "—"
    return f"{cell(key, 40)}@{str(version or '')[:8]}"


def run_rows(records: Sequence[Mapping[str, Any]], metric: str = HEADLINE_METRIC) -> tuple[list[str], list[list[str]]]:
    headers = ["RUN", "STARTED", "STATUS", "TRIGGER", "WHO", "COMMIT", "DATA VERSION", metric.upper(), "DURATION"]
    rows = [
        [
            str(record.get("run_id", "—")),
            str(record.get("started_at", "—"))[:19].replace("T", " "),
            str(record.get("status", "—")),
            str(record.get("trigger_kind", "—")),
            cell(short_principal(record.get("triggered_by")), 28),
            str(record.get("commit_id") or "—")[:12],
            _data_version(record),
            cell((record.get("metrics") or {}).get(metric)),
            _duration(record),
        ]
        for record in records
    ]
    return headers, rows


def runs_table(records: Sequence[Mapping[str, Any]], metric: str = HEADLINE_METRIC) -> str:
    if not records:
        return "no runs"
    headers, rows = run_rows(records, metric)
    return table(headers, rows)


def show(record: Mapping[str, Any]) -> str:
    """The whole record, by section, with console links and what an older record lacks."""
    lines = [f"run {record.get('run_id')}  {record.get('status')}  (schema {cell(record.get('schema_version'))})"]
    for title, fields in groups(record):
        lines += ["", title]
        width = max(len(name) for name, _ in fields)
        limit = 400 if title == "result" else 200
        lines += [f"  {name.ljust(width)}  {cell(value, limit)}" for name, value in fields]
    found = links(record)
    if found:
        lines += ["", "links"]
        width = max(len(name) for name in found)
        lines += [f"  {name.ljust(width)}  {url}" for name, url in found.items()]
    missing = lacks(record)
    if missing:
        lines += ["", f"lacks  {', '.join(missing)}: {why_it_lacks(record)}"]
    return "\n".join(lines)


def diff(result: Diff, show_all: bool = False) -> str:
    rows = result.rows if show_all else result.differences
    headers = ["SECTION", "FIELD", result.run_a[:36], result.run_b[:36], "DELTA"]
    body = [
        [
            row.section,
            row.field,
            cell(row.a, 48),
            cell(row.b, 48),
            ("" if row.delta is None else f"{row.delta:+.6f}".rstrip("0").rstrip(".")) + ("" if row.same else "  ≠"),
        ]
        for row in rows
    ]
    lines = [table(headers, body) if body else "no differences in the compared fields"]
    same = len(result.rows) - len(result.differences)
    if not show_all and same:
        lines.append(f"({same} compared fields are the same; --all shows them)")
    lines.append("")
    if result.changed_files is None:
        lines.append(f"training code files: {result.files_note}")
    else:
        lines.append(f"training code files: {result.files_note}")
        lines += [f"  {name}" for name in result.changed_files]
    return "\n".join(lines)


def verification(result: Verification) -> str:
    marks = {"ok": "✓", "mismatch": "✗", "missing": "?"}
    lines = [f"  {marks[check.outcome]} {check.name:<16} {check.detail}" for check in result.checks]
    problems = [check for check in result.checks if check.outcome != "ok"]
    if result.verified:
        verdict = f"run {result.run_id}: verified"
    else:
        verdict = f"run {result.run_id}: NOT verified ({len(problems)} problem(s))"
    return "\n".join([verdict, *lines])
