"""Two runs side by side: what differs in their code, data, hyperparameters, instances, image, metrics and model."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sagepipe.runs.records import plain

TRAINING_CODE_PATHS = ("container", "buildspec.yml")
"""What a build reads from a commit: a change anywhere else does not change the image."""

_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("code", ("commit_id", "commit_repository", "commit_branch", "commit_message", "commit_image_tree")),
    (
        "data",
        (
            "data_ref",
            "data_key",
            "data_version_id",
            "data_size_bytes",
            "data_etag",
            "data_manifest_sha256",
            "data_object_count",
            "data_sha256",
            "data_sha256_source",
        ),
    ),
    ("instances", ("instance_type", "instance_count", "volume_size_gb", "max_runtime_seconds")),
    ("image", ("image_digest", "image_built")),
    ("cache", ("cache_key", "cache_decision", "cache_reason", "cached_from", "forced")),
    ("model", ("status", "model_content_sha256", "artifact_sha256", "artifact_size_bytes")),
)


@dataclass(frozen=True)
class Row:
    section: str
    field: str
    a: Any
    b: Any
    delta: float | None = None

    @property
    def same(self) -> bool:
        return bool(self.a == self.b)

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "section": self.section,
            "field": self.field,
            "a": plain(self.a),
            "b": plain(self.b),
            "same": self.same,
        }
        if self.delta is not None:
            shown["delta"] = self.delta
        return shown


@dataclass
class Diff:
    run_a: str
    run_b: str
    rows: list[Row]
    changed_files: list[str] | None = None
    """Files changed under container/ and buildspec.yml between the two commits, when the repository is at hand."""
    files_note: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def differences(self) -> list[Row]:
        return [row for row in self.rows if not row.same]

    def as_json(self) -> dict[str, Any]:
        return {
            "a": self.run_a,
            "b": self.run_b,
            "rows": [row.as_json() for row in self.rows],
            "differs": [f"{row.section}.{row.field}" for row in self.differences],
            "changed_files": self.changed_files,
            "changed_files_note": self.files_note,
        }


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal | int | float):
        return Decimal(str(value))
    return None


def diff_records(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Row]:
    """Every field of interest, in sections, with each metric's delta (b minus a). Both sides may lack a field
    (an older record, a failed run): it is shown as None."""
    rows = [
        Row(section, name, a.get(name), b.get(name))
        for section, names in _SECTIONS[:3]
        for name in names
        if name in a or name in b
    ]
    hyperparameters_a = a.get("hyperparameters") or {}
    hyperparameters_b = b.get("hyperparameters") or {}
    rows += [
        Row("hyperparameters", name, hyperparameters_a.get(name), hyperparameters_b.get(name))
        for name in sorted(set(hyperparameters_a) | set(hyperparameters_b))
    ]
    rows += [Row(section, name, a.get(name), b.get(name)) for section, names in _SECTIONS[3:4] for name in names]
    rows += [
        Row(section, name, a.get(name), b.get(name))
        for section, names in _SECTIONS[4:5]
        for name in names
        if name in a or name in b
    ]
    # The training cache key's parts (functions/cache_key/key.py): which one differs says why two runs did not share
    # a model, or why they did.
    parts_a = a.get("cache_key_parts") or {}
    parts_b = b.get("cache_key_parts") or {}
    rows += [
        Row("cache key parts", name, parts_a.get(name), parts_b.get(name))
        for name in sorted(set(parts_a) | set(parts_b))
    ]
    metrics_a = a.get("metrics") or {}
    metrics_b = b.get("metrics") or {}
    for name in sorted(set(metrics_a) | set(metrics_b)):
        first, second = _number(metrics_a.get(name)), _number(metrics_b.get(name))
        delta = float(second - first) if first is not None and second is not None else None
        rows.append(Row("metrics", name, metrics_a.get(name), metrics_b.get(name), delta))
    rows += [Row(section, name, a.get(name), b.get(name)) for section, names in _SECTIONS[5:] for name in names]
    return rows


def _git(repository: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repository), *args], capture_output=True, text=True, timeout=60, check=False
    )


def repository_at(path: Path | None) -> Path | None:
    """The git work tree at `path` (or the current directory), if there is one."""
    try:
        top = _git(path or Path.cwd(), "rev-parse", "--show-toplevel")
    except OSError:
        return None
    return Path(top.stdout.strip()) if top.returncode == 0 and top.stdout.strip() else None


def changed_training_files(repository: Path | None, commit_a: Any, commit_b: Any) -> tuple[list[str] | None, str]:
    """`git diff --name-only A B -- container/ buildspec.yml`, or why it cannot be told."""
    if not commit_a or not commit_b:
        return None, "a run has no commit"
    if commit_a == commit_b:
        return [], "same commit"
    if repository is None:
        return None, "no git repository here: pass --repo PATH to list the training code's changed files"
    for commit in (commit_a, commit_b):
        if _git(repository, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
            return None, f"{repository} does not have commit {str(commit)[:12]} (git fetch?)"
    listed = _git(repository, "diff", "--name-only", str(commit_a), str(commit_b), "--", *TRAINING_CODE_PATHS)
    if listed.returncode != 0:
        return None, f"git diff failed: {listed.stderr.strip()[:200]}"
    files = [line for line in listed.stdout.splitlines() if line.strip()]
    return files, f"{len(files)} file(s) changed under {', '.join(TRAINING_CODE_PATHS)}"


def diff_runs(a: Mapping[str, Any], b: Mapping[str, Any], repository: Path | None) -> Diff:
    files, note = changed_training_files(repository, a.get("commit_id"), b.get("commit_id"))
    return Diff(str(a.get("run_id")), str(b.get("run_id")), diff_records(a, b), files, note)
