"""Human output of `sagepipe models`: the versions as a table, one version as titled lines."""

from __future__ import annotations

from collections.abc import Sequence

from sagepipe.models.model_registry import format_metric
from sagepipe.models.registry import ModelVersion
from sagepipe.runs.render import cell, table


def versions_table(versions: Sequence[ModelVersion], metric: str) -> str:
    if not versions:
        return "no model versions yet: a run that passes the quality gate registers one"
    headers = ["VERSION", "STATUS", "CREATED", metric.upper(), "RUN", "COMMIT"]
    rows = [
        [
            f"{item.version}{' *' if item.champion else ''}",
            item.status,
            cell(item.created_at[:19]),
            format_metric(item.metrics[metric]) if metric in item.metrics else "—",
            cell(item.run_id),
            cell((item.commit or "")[:12]),
        ]
        for item in versions
    ]
    return (
        table(headers, rows) + "\n\n* the champion: the latest Approved version, which the gate compares new runs with"
    )


def version(item: ModelVersion) -> str:
    lines = [
        f"version {item.version}: {item.status}" + (" (the champion)" if item.champion else ""),
        f"  package      {item.arn}",
        f"  created      {item.created_at}",
        f"  run          {item.run_id or '—'}" + (f"  (sagepipe runs show {item.run_id})" if item.run_id else ""),
        f"  commit       {item.commit or '—'}",
        f"  data version {item.data_version_id or '—'}",
        f"  model        {item.artifact or '—'}",
        f"  content      {item.content_sha256 or '—'}",
        f"  image        {item.image or '—'}" + (f" ({item.image_digest})" if item.image_digest else ""),
        "  metrics      "
        + (", ".join(f"{name}={format_metric(value)}" for name, value in sorted(item.metrics.items())) or "—"),
    ]
    if item.approval_description or item.decided_by:
        lines.append(f"  decision     {item.approval_description or '—'} (by {item.decided_by or 'unknown'})")
    if item.decisions:
        lines.append("  recorded decisions (on the run):")
        lines += [
            f"    {decision.get('decided_at')}  {decision.get('decision')}"
            f"  by {decision.get('decided_by') or 'unknown'}: {decision.get('reason') or '(no reason)'}"
            for decision in item.decisions
        ]
    if item.decisions and item.decisions[-1].get("decision") != item.status:
        lines.append(f"    ({item.status} is recorded on the run when SageMaker's state change event arrives)")
    return "\n".join(lines)
