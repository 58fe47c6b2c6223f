"""The quality gate's configuration: absolute thresholds, the primary metric, its direction, the tolerance.

template.yaml's GateThresholds, GatePrimaryMetric, GatePrimaryMetricDirection and GateTolerance parameters set
them. NormaliseTrigger (the first state of every run) parses them from its environment, so that a
configuration the template's AllowedPattern could not refuse (a metric named twice, a number JSON cannot
hold) fails the run before anything is built or trained; the run input then carries them to EvaluateGate,
which parses them again with the same models.

GateThresholds is a JSON object `{"<metric>": {"<operator>": <number>, ...}, ...}`, for example
`{"validation:roc_auc": {">=": 0.95}}`; `{}` sets no threshold. The operators are OPERATORS.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

OPERATORS: tuple[str, ...] = (">=", ">", "<=", "<", "==")
"""The comparison operators a threshold may use (template.yaml's GateThresholds AllowedPattern lists the same)."""

METRIC_NAME_MAX = 255
"""SageMaker's limit on a MetricDefinition Name (botocore's SageMaker model, MetricName: 1 to 255 characters)."""

Direction = Literal["higher", "lower"]


class GateSettingsError(ValueError):
    """The gate's configuration is not valid; the message says which part and why, in one line."""


class Threshold(BaseModel):
    """One absolute threshold: the run's `metric` must satisfy `operator value`."""

    model_config = ConfigDict(frozen=True)

    metric: str = Field(min_length=1, max_length=METRIC_NAME_MAX)
    operator: Literal[">=", ">", "<=", "<", "=="]
    value: float

    def holds(self, measured: float) -> bool:
        return {
            ">=": measured >= self.value,
            ">": measured > self.value,
            "<=": measured <= self.value,
            "<": measured < self.value,
            "==": measured == self.value,
        }[self.operator]


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise GateSettingsError(f"{', '.join(repr(key) for key in repeated)} appears more than once")
    return dict(pairs)


def _number(value: Any, where: str) -> float:
    # bool is an int subclass: `true` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GateSettingsError(f"{where} must be a finite number, not {json.dumps(value)}")
    return float(value)


def parse_thresholds(raw: str | dict[str, Any] | list[Any]) -> tuple[Threshold, ...]:
    """GateThresholds as a JSON text (or already parsed), or GateSettingsError saying what is wrong with it.

    A list is the parsed form this module produces itself (`GateSettings.payload()`), read back by EvaluateGate.
    """
    if isinstance(raw, list):
        return tuple(Threshold.model_validate(item) for item in raw)
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
        except GateSettingsError as error:
            raise GateSettingsError(f"GateThresholds: {error}") from None
        except json.JSONDecodeError as error:
            raise GateSettingsError(
                f"GateThresholds is not valid JSON ({error.msg} at character {error.pos})"
            ) from None
    else:
        parsed = raw
    if not isinstance(parsed, dict):
        raise GateSettingsError('GateThresholds must be a JSON object, e.g. {"validation:roc_auc": {">=": 0.95}}')
    thresholds: list[Threshold] = []
    for metric, bounds in parsed.items():
        if not metric or len(metric) > METRIC_NAME_MAX:
            raise GateSettingsError(
                f"GateThresholds: metric name {metric!r} must have 1 to {METRIC_NAME_MAX} characters"
            )
        if not isinstance(bounds, dict) or not bounds:
            raise GateSettingsError(
                f"GateThresholds: {metric!r} must map operators to numbers, e.g. "
                f'{{">=": 0.95}}, not {json.dumps(bounds)}'
            )
        for operator, value in bounds.items():
            if operator not in OPERATORS:
                raise GateSettingsError(
                    f"GateThresholds: {metric!r} uses the operator {operator!r}; use one of {', '.join(OPERATORS)}"
                )
            number = _number(value, f"GateThresholds: {metric!r} {operator}")
            thresholds.append(Threshold(metric=metric, operator=operator, value=number))
    return tuple(thresholds)


class GateSettings(BaseModel):
    """The whole gate configuration of a run."""

    model_config = ConfigDict(frozen=True)

    thresholds: tuple[Threshold, ...] = ()
    primary_metric: str = Field(default="validation:roc_auc", min_length=1, max_length=METRIC_NAME_MAX)
    direction: Direction = "higher"
    tolerance: float = Field(default=0.0, ge=0)

    @field_validator("thresholds", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> tuple[Threshold, ...]:
        if isinstance(value, tuple) and all(isinstance(item, Threshold) for item in value):
            return value
        return parse_thresholds(value)

    @field_validator("tolerance")
    @classmethod
    def _finite(cls, value: float) -> float:
        return _number(value, "GateTolerance")

    def payload(self) -> dict[str, Any]:
        """The settings in the run input (camelCase, as the state machine passes them on to EvaluateGate)."""
        return {
            "thresholds": [item.model_dump() for item in self.thresholds],
            "primaryMetric": self.primary_metric,
            "direction": self.direction,
            "tolerance": self.tolerance,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> GateSettings:
        return cls(
            thresholds=payload.get("thresholds", []),
            primary_metric=payload.get("primaryMetric", "validation:roc_auc"),
            direction=payload.get("direction", "higher"),
            tolerance=payload.get("tolerance", 0.0),
        )
