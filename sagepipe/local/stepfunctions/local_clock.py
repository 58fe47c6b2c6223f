"""Retry waits and timeouts follow the local clock, so fault tests do not sleep on real intervals.

The gap
    A fault test of a Retry policy (IntervalSeconds 2, BackoffRate 2, 4 attempts) waits 30 s on AWS and in
    moto, which sleeps for real in `RetrierDecl._eval_body`; a test of a state's TimeoutSeconds (30 s to
    40 days in sagepipe's definition) would wait that long. The definition must stay the deployed one.

What this adapter does
    * Gives moto's retrier module a `time` whose `sleep` goes through the runtime's clock (faults.controls()), which
      records the wait the definition asked for and sleeps it times `retry_scale` (1.0 unless a test
      changes it).
    * Wraps `Timeout._eval_body` (TimeoutSeconds, and its JSONata and path forms) so that a state the clock
      lists in `timeouts` gets that many seconds instead.

How it differs from AWS
    With the defaults it does not. A test that scales the clock sees the same attempts, in the same order,
    with shorter waits; the history's `timeoutInSeconds` shows the local timeout of a state it shortened.
"""

from __future__ import annotations

import importlib
import time
import types
from typing import Any, Final

from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute
from sagepipe.local.stepfunctions.faults import controls

ADAPTER = "local_clock"

_RETRIER_MODULE: Final = "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl"
_TIMEOUT_MODULE: Final = "moto.stepfunctions.parser.asl.component.common.timeouts.timeout"

MOTO_INTERNALS: Final = (
    Internal(f"{_RETRIER_MODULE}:time", why="the retrier sleeps with time.sleep(interval_seconds)"),
    Internal(f"{_RETRIER_MODULE}:RetrierDecl._eval_body", parameters=("self", "env")),
    Internal(
        f"{_TIMEOUT_MODULE}:Timeout._eval_body",
        parameters=("self", "env"),
        why="pushes the state's timeout in seconds, which _evaluate_with_timeout waits for",
    ),
)


class _ClockedTime(types.ModuleType):
    """The `time` module, except that `sleep` is the local clock's."""

    def __init__(self) -> None:
        super().__init__("time")

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        controls().clock.sleep_before_retry(seconds)


def _state_name(env: Any) -> str | None:
    try:
        name = env.states.context_object.context_object_data["State"]["Name"]
    except (AttributeError, KeyError, TypeError):
        return None
    return str(name)


def _timeout_eval_body(self: Any, env: Any) -> None:
    timeout_module = importlib.import_module(_TIMEOUT_MODULE)
    original_attribute(timeout_module.Timeout, "_eval_body")(self, env)
    declared = env.stack.pop()
    env.stack.append(controls().clock.timeout_for(_state_name(env), declared))


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    replace_attribute(importlib.import_module(_RETRIER_MODULE), "time", _ClockedTime())
    replace_attribute(importlib.import_module(_TIMEOUT_MODULE).Timeout, "_eval_body", _timeout_eval_body)
