"""The stack's custom resources, locally: the provider's own decision, without the HTTP round trip.

AWS: CloudFormation invokes the custom resource's Lambda function with a request, and the function PUTs its answer
to a pre-signed HTTPS URL; a FAILED answer fails the deploy. Locally: the provisioner asks the same function's
decision module (functions/check_settings/check.py) for its answer, and a FAILED answer fails provisioning with
the same reason; nothing is sent over HTTP, because the local emulator has no HTTPS endpoint to answer to.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Final

from sagepipe.local.core.provisioning import ProvisionedResource, ProvisionError, Stack

TRAINING_SETTINGS_CHECK: Final = "Custom::TrainingSettingsCheck"
_CLOUDFORMATION_PROPERTIES: Final = frozenset({"ServiceToken", "ServiceTimeout"})


def training_settings_check(p: Stack, logical_id: str, props: dict[str, Any]) -> ProvisionedResource:
    functions_dir = str(p.project_root / "functions")
    # The local Lambda runtime imports handlers the same way: with the CodeUri directory on sys.path.
    if functions_dir not in sys.path:
        sys.path.insert(0, functions_dir)
    check = importlib.import_module("check_settings.check")
    # CloudFormation passes every property to the provider as a string.
    properties = {name: str(value) for name, value in props.items() if name not in _CLOUDFORMATION_PROPERTIES}
    answer = check.decide("Create", properties)
    if answer.status != "SUCCESS":
        raise ProvisionError(f"{logical_id} ({TRAINING_SETTINGS_CHECK}) failed: {answer.reason}")
    return ProvisionedResource(logical_id, TRAINING_SETTINGS_CHECK, check.PHYSICAL_RESOURCE_ID)


HANDLERS = {TRAINING_SETTINGS_CHECK: training_settings_check}
