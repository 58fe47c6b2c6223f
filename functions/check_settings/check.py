"""The stack's training settings check, as a CloudFormation custom resource: what to answer, and how.

CloudFormation sends the custom resource's provider a Create, Update or Delete request, and waits for a response
document PUT to the request's pre-signed ResponseURL: Status SUCCESS or FAILED, a Reason (shown in the stack's
events), and the request's StackId, RequestId and LogicalResourceId echoed, with a PhysicalResourceId
(CloudFormation User Guide, "Custom resource request objects" and "Custom resource response objects"). A FAILED
Create or Update fails the deploy and rolls it back; Delete always succeeds, so that no settings can block a
stack's removal.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.spot_settings import spot_wait_problem

PHYSICAL_RESOURCE_ID: Final = "sagepipe-training-settings-check"
"""Constant: an Update that changes the settings is checked in place, never a replacement (which would send a
Delete of the old one)."""
RESPONSE_TIMEOUT_SECONDS: Final = 20.0
REASON_LIMIT: Final = 1000
"""Keeps the response well under the 4,096-byte response object limit (User Guide, "Custom resource response
objects")."""


class TrainingSettings(BaseModel):
    """The custom resource's properties. CloudFormation passes every property value as a string."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    managed_spot: Literal["true", "false"] = Field(alias="EnableManagedSpotTraining")
    max_wait_seconds: int = Field(alias="MaxWaitTimeInSeconds", ge=1)
    max_runtime_seconds: int = Field(alias="TrainingMaxRuntimeSeconds", ge=1)


@dataclass(frozen=True)
class Answer:
    status: Literal["SUCCESS", "FAILED"]
    reason: str


def decide(request_type: str, properties: dict[str, Any]) -> Answer:
    """SUCCESS, or FAILED with one line a person can act on."""
    if request_type == "Delete":
        return Answer("SUCCESS", "nothing to check on delete")
    try:
        settings = TrainingSettings.model_validate(properties)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return Answer("FAILED", f"training settings: {where}: {first['msg']}")
    problem = spot_wait_problem(
        managed_spot=settings.managed_spot == "true",
        max_wait_seconds=settings.max_wait_seconds,
        max_runtime_seconds=settings.max_runtime_seconds,
    )
    return Answer("FAILED", problem) if problem else Answer("SUCCESS", "training settings are valid")


def response_document(event: dict[str, Any], answer: Answer) -> bytes:
    """The response object CloudFormation expects, as JSON."""
    return json.dumps(
        {
            "Status": answer.status,
            "Reason": answer.reason[:REASON_LIMIT],
            "PhysicalResourceId": event.get("PhysicalResourceId") or PHYSICAL_RESOURCE_ID,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
        }
    ).encode()


def send(response_url: str, document: bytes) -> int:
    """PUT the document to the pre-signed URL (HTTPS only) and return the HTTP status.

    Content-Type is empty: the URL is pre-signed for a PUT without one (User Guide, "Custom resource response
    objects").
    """
    if urlparse(response_url).scheme != "https":
        raise ValueError("the ResponseURL is not an https URL")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        response_url, data=document, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(document))}
    )
    with urllib.request.urlopen(request, timeout=RESPONSE_TIMEOUT_SECONDS) as response:  # noqa: S310
        return int(response.status)
