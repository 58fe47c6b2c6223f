"""Template parameter constraints, checked as CloudFormation checks them before it creates anything.

CloudFormation refuses a stack whose parameter values break their declared constraints (Type Number,
AllowedValues, AllowedPattern, MinLength/MaxLength, MinValue/MaxValue), before any resource exists. Its message
is "Malformed input-Parameter <name> must match pattern <pattern>", or, when the parameter has a
ConstraintDescription, that description in place of the constraint: "Malformed input-Parameter MyParameter must
only contain uppercase and lowercase letters and numbers" (CloudFormation User Guide, "Parameters" section
syntax, ConstraintDescription). The local provisioner applies the same constraints, so that a bad `--param` is
refused in one line before anything runs, as `sam deploy` would refuse it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sagepipe.local.core.provisioning import ProvisionError


class ParameterConstraintError(ProvisionError):
    """A parameter value breaks its declared constraint."""


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _violation(spec: Mapping[str, Any], value: str) -> str | None:
    """What the value breaks, in CloudFormation's words without the parameter's name; None if nothing."""
    number = _number(value)
    allowed = spec.get("AllowedValues")
    pattern = spec.get("AllowedPattern")
    is_number = spec.get("Type") == "Number"
    checks = (
        (is_number and number is None, "must be a number"),
        (
            is_number and number is not None and "MinValue" in spec and number < float(spec["MinValue"]),
            f"must be a number not less than {spec.get('MinValue')}",
        ),
        (
            is_number and number is not None and "MaxValue" in spec and number > float(spec["MaxValue"]),
            f"must be a number not greater than {spec.get('MaxValue')}",
        ),
        (allowed is not None and value not in [str(item) for item in allowed], "must be one of AllowedValues"),
        # CloudFormation matches the whole value against the pattern.
        (pattern is not None and re.fullmatch(str(pattern), value) is None, f"must match pattern {pattern}"),
        (
            "MinLength" in spec and len(value) < int(spec["MinLength"]),
            f"must contain at least {spec.get('MinLength')} characters",
        ),
        (
            "MaxLength" in spec and len(value) > int(spec["MaxLength"]),
            f"must contain at most {spec.get('MaxLength')} characters",
        ),
    )
    return next((message for failed, message in checks if failed), None)


def check_parameters(declared: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """Raise ParameterConstraintError for the first parameter (in declaration order) whose value breaks its
    constraints, or that the template does not declare."""
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise ParameterConstraintError(f"Parameters: {unknown} do not exist in the template")
    for name, spec in declared.items():
        if name not in values or values[name] is None:
            continue
        problem = _violation(spec, str(values[name]))
        if problem is not None:
            described = spec.get("ConstraintDescription")
            raise ParameterConstraintError(
                f"Malformed input-Parameter {name} {' '.join(str(described).split()) if described else problem}"
            )
