"""The local provisioner refuses parameter values as CloudFormation does, before anything is created."""

from __future__ import annotations

import pytest

from sagepipe.local.cloudformation.parameters import ParameterConstraintError, check_parameters
from sagepipe.template import load_template

DECLARED = load_template()["Parameters"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        # ConstraintDescription, when declared, replaces the constraint in the message.
        ("TrainingCacheVersion", "bad value!", "Malformed input-Parameter TrainingCacheVersion 1 to 32 characters"),
        ("TrainingCacheVersion", "x" * 33, "Malformed input-Parameter TrainingCacheVersion 1 to 32 characters"),
        ("EnableManagedSpotTraining", "yes", "Malformed input-Parameter EnableManagedSpotTraining must be one of"),
        ("MaxWaitTimeInSeconds", "soon", "Malformed input-Parameter MaxWaitTimeInSeconds must be a number"),
        ("KeepAlivePeriodInSeconds", "21601", "must be a number not greater than 21600"),
        ("TrainingMaxRuntimeSeconds", "0", "must be a number not less than 1"),
        ("CodeBranch", "main branch", "Malformed input-Parameter CodeBranch must match pattern"),
    ],
)
def test_a_value_breaking_its_constraint_is_refused_in_cloudformations_words(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(ParameterConstraintError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_parameters(DECLARED, {name: value})


def test_the_template_defaults_and_valid_values_pass() -> None:
    defaults = {name: spec.get("Default") for name, spec in DECLARED.items()}
    check_parameters(DECLARED, defaults)
    check_parameters(DECLARED, {"TrainingCacheVersion": "2026-12-01", "KeepAlivePeriodInSeconds": "21600"})


def test_an_undeclared_parameter_is_refused() -> None:
    with pytest.raises(ParameterConstraintError, match=r"\['Nope'\] do not exist in the template"):
        check_parameters(DECLARED, {"Nope": "1"})
