"""DynamoDB requests are atomic, as DynamoDB's item writes are.

The gap
    DynamoDB applies each write to an item atomically: a conditional write checks and writes in one step, and
    two UpdateItem calls on one item both take effect. moto's backend reads the item, checks the condition and
    writes it back with no lock, while its server answers requests on many threads. Two executions recording
    the latest commit and the latest data version at the same moment lose one of the writes (both runs then
    end SKIPPED, which cannot happen on AWS), and two ClaimRun conditional puts could both succeed, which
    would break exactly-once.

What this adapter does
    Wraps `DynamoHandler.call_action`, through which moto serves every DynamoDB action, in one re-entrant lock,
    so each request reads, checks and writes as one step.

How it differs from AWS
    DynamoDB serialises writes per item; this serialises every DynamoDB request of the emulator. Only
    throughput differs (moto answers a request in about a millisecond).
"""

from __future__ import annotations

import threading
from typing import Any, Final

from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "dynamodb_atomic"

MOTO_INTERNALS: Final = (
    Internal(
        "moto.dynamodb.responses:DynamoHandler.call_action",
        parameters=("self",),
        why="moto dispatches every DynamoDB action of a request through it",
    ),
)

_request_lock = threading.RLock()
"""Not state but a guard: moto's DynamoDB backend is process-wide, so is the lock that makes its requests atomic."""


def call_action(self: Any) -> Any:
    from moto.dynamodb.responses import DynamoHandler

    with _request_lock:
        return original_attribute(DynamoHandler, "call_action")(self)


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    from moto.dynamodb.responses import DynamoHandler

    replace_attribute(DynamoHandler, "call_action", call_action)
