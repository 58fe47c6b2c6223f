"""Human output of `sagepipe runs`: aligned tables and titled sections, plain text (no terminal library)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sagepipe.runs.diff import Diff
from sagepipe.runs.records import groups, lacks, links, why_it_lacks
from sagepipe.runs.verify import Verification
from sagepipe.runs.views import HEADLINE_METRIC, cell, diff_rows, run_headers, run_row

__all__ = ["HEADLINE_METRIC", "cell", "diff", "run_rows", "runs_table", "show", "table", "verification"]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns as wide as their widest cell, two spaces apart, a rule under the header."""
    widths = [max([len(header), *(len(row[index]) for row in rows)]) for index, header in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(value.ljust(width) for value, width in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["─" * width for width in widths]), *(line(row) for row in rows)])


def run_rows(records: Sequence[Mapping[str, Any]], metric: str = HEADLINE_METRIC) -> tuple[list[str], list[list[str]]]:
    return run_headers(metric), [run_row(record, metric).cells() for record in records]


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
    headers = ["SECTION", "FIELD", result.run_a[:36], result.run_b[:36], "DELTA"]
    body = [
        [row.section, row.field, row.a, row.b, row.delta + ("" if row.same else "  ≠")]
        for row in diff_rows(result, show_all)
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
