"""The training cost settings SageMaker would refuse, found before anything runs.

SageMaker's CreateTrainingJob requires StoppingCondition.MaxWaitTimeInSeconds to be "equal to or greater than
MaxRuntimeInSeconds" for managed spot training (botocore's SageMaker model, StoppingCondition). Left to the training
job, a shorter wait would fail every run at its Train state; the stack refuses it at deploy time instead (the
TrainingSettingsCheck custom resource, functions/check_settings) and NormaliseTrigger again before a run starts.
"""

from __future__ import annotations


def spot_wait_problem(*, managed_spot: bool, max_wait_seconds: int, max_runtime_seconds: int) -> str | None:
    """One line saying what is wrong with the Spot settings, or None when SageMaker would accept them."""
    if managed_spot and max_wait_seconds < max_runtime_seconds:
        return (
            f"MaxWaitTimeInSeconds ({max_wait_seconds}) is shorter than TrainingMaxRuntimeSeconds "
            f"({max_runtime_seconds}): with EnableManagedSpotTraining, SageMaker requires the wait to be at least "
            "the runtime; raise MaxWaitTimeInSeconds or lower TrainingMaxRuntimeSeconds"
        )
    return None
