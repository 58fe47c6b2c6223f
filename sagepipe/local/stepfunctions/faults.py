"""Fault injection and a local clock, for proving the workflow right under every fault.

A test arms faults on the running local runtime (`controls().faults`): a named integration fails its
first N calls with an AWS error code, as the service would answer, or hangs past its state's timeout. The
Task state sees exactly what it would see on AWS (the error named as Step Functions names it, by
sagepipe.error_names: `DynamoDB.ProvisionedThroughputExceededException`, or `Ecr.EcrException` for ECR's
unmodelled ThrottlingException), and its Retry and Catch decide what happens next. Only codes the error table
lists for the integration can be injected, so a test cannot exercise an error AWS would never send.

The clock (`controls().clock`) scales the waits of Retry policies, and can give a state a shorter
timeout, so that a test of four retries with backoff takes milliseconds. The definition is never changed: the
adapters apply the clock where moto's engine waits (sagepipe.local.stepfunctions.local_clock).

Test-only by construction: faults and the clock exist only in the local runtime's process, are armed only
through this Python API, and nothing in template.yaml, the state machine or the functions refers to them
(tests/static checks that). A deployed stack has no way to switch them on.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Final, Literal

from botocore.exceptions import ClientError

from sagepipe import error_names
from sagepipe.local.core import context

INTEGRATIONS: Final = frozenset(
    {
        "lambda:invoke",
        "dynamodb:putItem",
        "dynamodb:updateItem",
        "dynamodb:getItem",
        "sns:publish",
        "aws-sdk:ecr:describeImages",
        "aws-sdk:ecr:batchGetImage",
        "aws-sdk:ecr:putImage",
        "aws-sdk:s3:copyObject",
        "aws-sdk:sagemaker:createModelPackage",
        "codebuild:startBuild",
        "sagemaker:createTrainingJob",
    }
)
"""The integrations sagepipe's workflow calls, named as in a Task's Resource (after arn:aws:states:::,
without .sync)."""

SYNC_INTEGRATIONS: Final = frozenset({"codebuild:startBuild", "sagemaker:createTrainingJob"})
"""Integrations that start a job: only these support `after_call` (the job starts, then the call fails)."""

MAX_HANG_SECONDS: Final = 30.0
"""A hung call is released after this long at most (or when the plan is cleared), so no thread lingers."""


@dataclass(frozen=True)
class Fault:
    """What goes wrong, on which calls."""

    integration: str
    """One of INTEGRATIONS."""
    error: str | None = None
    """The AWS error code the service answers with (ProvisionedThroughputExceededException, Throttled, ...): one
    that sagepipe.error_names lists for the integration."""
    times: int | None = 1
    """How many matching calls fail (the first ones); None: every matching call."""
    state: str | None = None
    """Only calls from this Task state (required to hang: the state's timeout is shortened)."""
    hang: bool = False
    """Instead of an error, the call blocks past the state's timeout (the state fails with States.Timeout)."""
    timeout_seconds: float = 0.5
    """With `hang`: the state's TimeoutSeconds in this local run."""
    after_call: bool = False
    """The call is made and succeeds (the job starts), then the task reports the error: a lost response."""

    def __post_init__(self) -> None:
        if self.integration not in INTEGRATIONS:
            raise ValueError(f"unknown integration {self.integration!r}; one of {sorted(INTEGRATIONS)}")
        if self.hang == bool(self.error):
            raise ValueError("a fault either fails with an error code or hangs")
        if self.error and self.error not in error_names.codes(self.integration):
            raise ValueError(
                f"{self.integration} does not answer {self.error!r} in sagepipe.error_names; "
                f"one of {sorted(error_names.codes(self.integration))}"
            )
        if self.hang and not self.state:
            raise ValueError("a hanging fault names its state, whose timeout is shortened for this run")
        if self.after_call and self.integration not in SYNC_INTEGRATIONS:
            raise ValueError(f"after_call is for integrations that start a job: {sorted(SYNC_INTEGRATIONS)}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1, or None for every call")


@dataclass
class InjectedCall:
    """One call the plan interfered with."""

    state: str
    integration: str
    retry_count: int
    fault: Fault
    outcome: Literal["failed", "hung"]
    late_result: str | None = None
    """For a hung call: how the call went when it was finally let through ("ok" or the error code)."""
    late_done: threading.Event = field(default_factory=threading.Event, repr=False)


@dataclass
class _Armed:
    fault: Fault
    remaining: int | None


class FaultPlan:
    """The faults armed on the local runtime, and the calls they hit."""

    def __init__(self, clock: LocalClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []
        self._calls: list[InjectedCall] = []
        self._release = threading.Event()

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self._armed.append(_Armed(fault, fault.times))
        if fault.hang and fault.state:
            self._clock.timeouts[fault.state] = fault.timeout_seconds
        return fault

    def clear(self) -> None:
        """Disarm every fault and let hung calls go on."""
        with self._lock:
            self._armed.clear()
            self._calls.clear()
        self.release_hung_calls()
        self._release = threading.Event()

    def release_hung_calls(self) -> None:
        self._release.set()

    @property
    def calls(self) -> list[InjectedCall]:
        with self._lock:
            return list(self._calls)

    def take(self, *, state: str, integration: str, retry_count: int, after_call: bool) -> InjectedCall | None:
        """The call this fault hits, if any (one of its `times` is used up)."""
        with self._lock:
            for armed in self._armed:
                fault = armed.fault
                if fault.integration != integration or fault.after_call != after_call:
                    continue
                if fault.state is not None and fault.state != state:
                    continue
                if armed.remaining is not None:
                    if armed.remaining <= 0:
                        continue
                    armed.remaining -= 1
                call = InjectedCall(state, integration, retry_count, fault, "hung" if fault.hang else "failed")
                self._calls.append(call)
                return call
        return None

    def wait_while_hung(self) -> None:
        self._release.wait(timeout=MAX_HANG_SECONDS)


def injected_error(call: InjectedCall, operation: str) -> ClientError:
    """The error response the service would send, as botocore raises it."""
    code = str(call.fault.error)
    status = error_names.http_status(call.integration, code)
    response = {
        "Error": {"Code": code, "Message": f"{code} (injected by the local fault plan)"},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4())},
    }
    return ClientError(response, operation)  # type: ignore[arg-type]


@dataclass
class LocalClock:
    """How long the local runtime waits where the workflow says to wait."""

    retry_scale: float = 1.0
    """Multiplies every Retry wait (IntervalSeconds, backoff, MaxDelaySeconds, jitter): 0.001 makes 2 s 2 ms."""
    timeouts: dict[str, float] = field(default_factory=dict)
    """TimeoutSeconds for these states in this local run, instead of the definition's."""
    retry_waits: list[float] = field(default_factory=list)
    """Every Retry wait the definition asked for, in seconds, before scaling."""

    def sleep_before_retry(self, seconds: float) -> None:
        self.retry_waits.append(seconds)
        time.sleep(seconds * self.retry_scale)

    def timeout_for(self, state: str | None, declared: float) -> float:
        if state is not None and state in self.timeouts:
            return self.timeouts[state]
        return declared

    def reset(self) -> None:
        self.retry_scale = 1.0
        self.timeouts.clear()
        self.retry_waits.clear()


@dataclass
class FaultControls:
    """The clock and the fault plan of one local runtime (kept in its context, so `Emulator.reset()` drops them:
    every fault disarmed, every hung call let go, the clock back to the definition's own waits)."""

    clock: LocalClock = field(default_factory=LocalClock)
    faults: FaultPlan = field(init=False)

    def __post_init__(self) -> None:
        self.faults = FaultPlan(self.clock)

    def close(self) -> None:
        self.faults.clear()


def controls(runtime: context.RuntimeContext | None = None) -> FaultControls:
    """The running runtime's clock and fault plan (tests arm faults and scale the clock through them)."""
    return (runtime or context.current()).state(FaultControls)
