"""The quality gate: is this model good enough, and is it not worse than the current champion?

A run's metrics are compared with
- every absolute threshold of the stack's GateThresholds (a threshold on a metric the run does not have fails);
- the champion, the latest Approved package of the stack's model package group: on the primary metric, the run
  may be worse than the champion by at most the tolerance, in the metric's direction (higher or lower is
  better). A champion that carries no value of the primary metric cannot be compared, and fails the gate: reject
  that package (`sagepipe models reject`), and the previous approved one, if any, is the champion again.
- no champion yet: the thresholds alone decide (one comparison says so).

A model is never compared with itself: when the champion's content digest (`sagepipe:content-sha256`) is the
run's (a CACHED run of the champion's own key, or a training that reproduced it file for file), the champion
comparison passes and says so, whatever the metrics' rounding: a record's numbers went through JSONata's
`$string`, which rounds a non-integer to 15 significant digits (jsonata-js, `string()` in src/functions.js:
`Number(val.toPrecision(15))`), the package's through Python's `repr` (every digit), so the copy in the record
can read worse than the champion's by a rounding, in either direction. The thresholds still apply: the stack may
have raised them.

The input is a plain set of metrics and the run's identity, whatever produced them (a training job, or a
cached earlier run), so the same gate can judge any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from common.gate_settings import GateSettings, Threshold
from common.model_registry import APPROVED, CONTENT_SHA256, format_metric, metrics_of, run_id_of, version_of

ComparisonKind = Literal["threshold", "champion", "no-champion"]


@dataclass(frozen=True)
class Champion:
    """The latest Approved package of the group, with the metrics it was registered with."""

    model_package_arn: str
    model_package_version: int | None
    run_id: str | None
    metrics: dict[str, float]
    content_sha256: str | None = None
    """The model's content digest, as registered (`sagepipe:content-sha256`); None when the package has none."""


@dataclass(frozen=True)
class Comparison:
    """One check of the gate, with both values and its verdict, in a sentence."""

    kind: ComparisonKind
    metric: str
    passed: bool
    reason: str
    operator: str | None = None
    value: float | None = None
    threshold: float | None = None
    champion_value: float | None = None
    tolerance: float | None = None
    same_model: bool = False
    """A champion comparison only: the run's model is the champion's (the same content digest)."""

    def as_record(self) -> dict[str, Any]:
        """The comparison in the audit record (snake_case; the values a comparison does not have are left out,
        but `value`, which is null when the run lacks the metric)."""
        record: dict[str, Any] = {
            "kind": self.kind,
            "metric": self.metric,
            "passed": self.passed,
            "reason": self.reason,
            "value": self.value,
        }
        optional = {
            "operator": self.operator,
            "threshold": self.threshold,
            "champion_value": self.champion_value,
            "tolerance": self.tolerance,
        }
        if self.same_model:
            record["same_model"] = True
        return record | {name: item for name, item in optional.items() if item is not None}


@dataclass(frozen=True)
class GateResult:
    comparisons: tuple[Comparison, ...]
    settings: GateSettings
    champion: Champion | None = None
    failures: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "failures", tuple(item.reason for item in self.comparisons if not item.passed))

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def summary(self) -> str:
        """One line: what failed (each comparison with both values), or that every comparison passed."""
        if self.failures:
            return "; ".join(self.failures)
        if self.champion is None:
            detail = ", no champion yet: the thresholds alone decided"
        elif any(item.same_model for item in self.comparisons):
            detail = ", the model is the champion itself"
        else:
            detail = ""
        return f"passed {len(self.comparisons)} comparison(s)" + detail

    def as_record(self) -> dict[str, Any]:
        """The run record's `gate` field (docs/audit-record.md)."""
        record: dict[str, Any] = {
            "passed": self.passed,
            "summary": self.summary,
            "primary_metric": self.settings.primary_metric,
            "direction": self.settings.direction,
            "tolerance": self.settings.tolerance,
            "thresholds": [
                {"metric": item.metric, "operator": item.operator, "value": item.value}
                for item in self.settings.thresholds
            ],
            "comparisons": [item.as_record() for item in self.comparisons],
        }
        if self.champion is not None:
            champion: dict[str, Any] = {"model_package_arn": self.champion.model_package_arn}
            if self.champion.model_package_version is not None:
                champion["model_package_version"] = self.champion.model_package_version
            if self.champion.run_id:
                champion["run_id"] = self.champion.run_id
            record["champion"] = champion
        return record


def _number(value: float) -> str:
    return format_metric(value)


def _missing(metric: str, metrics: Mapping[str, float]) -> str:
    has = ", ".join(sorted(metrics)) or "none"
    return f"the run has no metric {metric} (it has: {has})"


def _threshold(threshold: Threshold, metrics: Mapping[str, float]) -> Comparison:
    stated = f"{threshold.metric} {threshold.operator} {_number(threshold.value)}"
    measured = metrics.get(threshold.metric)
    if measured is None:
        return Comparison(
            "threshold",
            threshold.metric,
            False,
            f"threshold {stated}: {_missing(threshold.metric, metrics)}",
            operator=threshold.operator,
            threshold=threshold.value,
        )
    holds = threshold.holds(measured)
    verdict = "holds" if holds else "does not hold"
    return Comparison(
        "threshold",
        threshold.metric,
        holds,
        f"threshold {stated} {verdict}: the run's {threshold.metric} is {_number(measured)}",
        operator=threshold.operator,
        value=measured,
        threshold=threshold.value,
    )


def _against_champion(
    settings: GateSettings, metrics: Mapping[str, float], champion: Champion, content_sha256: str | None
) -> Comparison:
    metric, tolerance = settings.primary_metric, settings.tolerance
    version = f"version {champion.model_package_version}" if champion.model_package_version else "the champion"
    higher = settings.direction == "higher"
    operator = ">=" if higher else "<="
    measured = metrics.get(metric)
    best = champion.metrics.get(metric)
    if content_sha256 and champion.content_sha256 == content_sha256:
        return Comparison(
            "champion",
            metric,
            True,
            f"the model is the champion itself ({version}, content sha256 {content_sha256}): "
            "a model is not compared with itself",
            operator=operator,
            value=measured,
            champion_value=best,
            tolerance=tolerance,
            same_model=True,
        )
    if measured is None:
        return Comparison(
            "champion",
            metric,
            False,
            f"champion ({version}): {_missing(metric, metrics)}",
            operator=operator,
            champion_value=best,
            tolerance=tolerance,
        )
    if best is None:
        return Comparison(
            "champion",
            metric,
            False,
            f"champion ({version}) carries no {metric} to compare with (metadata {metric!r} missing): reject it "
            "with `sagepipe models reject` to fall back to the approved version before it",
            operator=operator,
            value=measured,
            tolerance=tolerance,
        )
    bound = best - tolerance if higher else best + tolerance
    passed = measured >= bound if higher else measured <= bound
    better = "higher" if higher else "lower"
    if passed:
        reason = (
            f"{metric} {_number(measured)} is not worse than the champion's {_number(best)} ({version}; "
            f"{better} is better, tolerance {_number(tolerance)})"
        )
    else:
        reason = (
            f"{metric} {_number(measured)} is worse than the champion's {_number(best)} ({version}) by more than "
            f"the tolerance {_number(tolerance)} ({better} is better)"
        )
    return Comparison(
        "champion", metric, passed, reason, operator=operator, value=measured, champion_value=best, tolerance=tolerance
    )


def evaluate(
    metrics: Mapping[str, float],
    settings: GateSettings,
    champion: Champion | None,
    content_sha256: str | None = None,
) -> GateResult:
    """Every comparison of the gate for a run's metrics and its model's content digest (when known). The run
    passes when all of them pass."""
    comparisons = [_threshold(threshold, metrics) for threshold in settings.thresholds]
    if champion is None:
        comparisons.append(
            Comparison(
                "no-champion",
                settings.primary_metric,
                True,
                "no approved model in the group yet: the thresholds alone decide",
                value=metrics.get(settings.primary_metric),
            )
        )
    else:
        comparisons.append(_against_champion(settings, metrics, champion, content_sha256))
    return GateResult(tuple(comparisons), settings, champion)


def find_champion(sagemaker: Any, group: str) -> Champion | None:
    """The latest Approved package of the group (ListModelPackages, newest first, one result), with its
    metrics (DescribeModelPackage: they are in its CustomerMetadataProperties), or None when none is approved."""
    listed = sagemaker.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus=APPROVED,
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )["ModelPackageSummaryList"]
    if not listed:
        return None
    arn = str(listed[0]["ModelPackageArn"])
    description = sagemaker.describe_model_package(ModelPackageName=arn)
    properties = description.get("CustomerMetadataProperties")
    version = description.get("ModelPackageVersion", listed[0].get("ModelPackageVersion"))
    return Champion(
        model_package_arn=arn,
        model_package_version=int(version) if version is not None else version_of(arn),
        run_id=run_id_of(properties),
        metrics=metrics_of(properties),
        content_sha256=(properties or {}).get(CONTENT_SHA256) or None,
    )
