"""The queue that evaluates executions on a few threads at a time (sagepipe.local.stepfunctions.execution_slots)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from sagepipe.local.core import context as runtime_context
from sagepipe.local.core.moto_internals import original_attribute
from sagepipe.local.process import poll_until
from sagepipe.local.stepfunctions import execution_slots
from sagepipe.local.stepfunctions.execution_slots import ExecutionSlots

BOUND = 10.0
"""Every wait here is on an event, bounded by this many seconds."""


class Evaluations:
    """Evaluations that record when they start and block until released."""

    def __init__(self, count: int) -> None:
        self.started = [threading.Event() for _ in range(count)]
        self.release = [threading.Event() for _ in range(count)]
        self.order: list[int] = []
        self._lock = threading.Lock()

    def __getitem__(self, index: int) -> Callable[[], None]:
        def evaluate() -> None:
            with self._lock:
                self.order.append(index)
            self.started[index].set()
            assert self.release[index].wait(BOUND), f"evaluation {index} was never released"

        return evaluate

    def release_all(self) -> None:
        for each in self.release:
            each.set()


@pytest.fixture
def evaluations() -> Iterator[Callable[[int], Evaluations]]:
    """Makes blocked evaluations, and releases every one of them at the end of the test."""
    made: list[Evaluations] = []

    def make(count: int) -> Evaluations:
        made.append(Evaluations(count))
        return made[-1]

    yield make
    for each in made:
        each.release_all()


def test_no_more_than_the_base_slots_run_at_once_and_the_queue_is_served_first_in_first_out(
    evaluations: Callable[[int], Evaluations],
) -> None:
    # Given two slots, and a watchdog too slow to add any thread during the test
    slots = ExecutionSlots(base_slots=2, stall_seconds=3600)
    work = evaluations(4)

    # When four executions are submitted and none ends
    for index in range(4):
        slots.submit(work[index])
    assert work.started[0].wait(BOUND)
    assert work.started[1].wait(BOUND)

    # Then two run and two wait
    assert (slots.threads(), slots.queued()) == (2, 2)
    assert not work.started[2].is_set()

    # When the first ends, the next in line starts, and so on
    work.release[0].set()
    assert work.started[2].wait(BOUND)
    work.release[1].set()
    assert work.started[3].wait(BOUND)
    assert work.order == [0, 1, 2, 3]
    assert slots.queued() == 0
    slots.close()


def test_executions_that_wait_do_not_hold_up_the_queue_the_watchdog_adds_a_thread_then_lets_it_go(
    evaluations: Callable[[int], Evaluations],
) -> None:
    # Given one slot held by an execution that waits (a .sync job, a Wait state, a task token)
    slots = ExecutionSlots(base_slots=1, stall_seconds=0.05)
    work = evaluations(2)
    slots.submit(work[0])
    assert work.started[0].wait(BOUND)

    # When another execution is queued and nothing moves for the stall period
    slots.submit(work[1])

    # Then a thread is added and the second runs while the first still waits
    assert work.started[1].wait(BOUND)
    assert not work.release[0].is_set()
    assert slots.threads() == 2

    # And when both end with nothing queued, the thread beyond the base ends
    work.release_all()
    assert poll_until(lambda: slots.threads() == 1, timeout=BOUND, interval=0.01)
    slots.close()


def test_a_reset_drops_the_queued_executions_and_refuses_new_ones(evaluations: Callable[[int], Evaluations]) -> None:
    # Given one slot busy and one execution queued behind it
    slots = ExecutionSlots(base_slots=1, stall_seconds=3600)
    work = evaluations(2)
    slots.submit(work[0])
    slots.submit(work[1])
    assert work.started[0].wait(BOUND)

    # When the runtime is reset (its state closed) and the running execution ends
    slots.close()
    work.release_all()

    # Then the slot's thread ends without starting the queued one, and nothing more is accepted
    assert poll_until(lambda: slots.threads() == 0, timeout=BOUND, interval=0.01)
    assert work.order == [0]
    with pytest.raises(RuntimeError, match="reset"):
        slots.submit(work[1])


def test_an_evaluation_that_raises_frees_its_slot(evaluations: Callable[[int], Evaluations]) -> None:
    # Given one slot
    slots = ExecutionSlots(base_slots=1, stall_seconds=3600)
    work = evaluations(1)

    def broken() -> None:
        raise RuntimeError("the engine failed")

    # When an evaluation raises, then another is submitted
    slots.submit(broken)
    slots.submit(work[0])

    # Then the next one still runs, on the same thread
    assert work.started[0].wait(BOUND)
    assert slots.threads() == 1
    slots.close()


# ------------------------------------------------------------------------------- executions on moto's engine

ROLE = "arn:aws:iam::123456789012:role/sfn"
WAITS = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "End": True}}}
PASSES = {
    "StartAt": "Shape",
    "States": {
        "Shape": {"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"}, "Next": "Done"},
        "Done": {"Type": "Succeed"},
    },
}


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """moto's engine in process, starting executions through execution_slots in a runtime of its own."""
    runtime = runtime_context.RuntimeContext(state_dir=tmp_path, endpoint="http://localhost:0", client_factory=print)
    monkeypatch.setattr(runtime_context, "_current", runtime)
    monkeypatch.setattr(ExecutionWorker, "start", execution_slots._start)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name="us-east-1")
    runtime.reset()


def _machine(sfn: Any, name: str, definition: dict[str, Any]) -> str:
    return str(sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"])


def _ended(sfn: Any, arn: str) -> dict[str, Any]:
    described: dict[str, Any] = {}

    def ended() -> bool:
        described.update(sfn.describe_execution(executionArn=arn))
        return described["status"] != "RUNNING"

    assert poll_until(ended, timeout=BOUND, interval=0.02), f"{arn} still RUNNING after {BOUND} s"
    return described


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    return list(sfn.get_execution_history(executionArn=arn)["events"])


def test_an_execution_queued_behind_a_busy_slot_is_running_with_its_start_recorded_and_a_stop_aborts_it(
    sfn: Any,
) -> None:
    # Given one slot, held by an execution in a long Wait state, and no watchdog in the test's time
    slots = runtime_context.current().state(ExecutionSlots)
    slots.base_slots, slots.stall_seconds = 1, 3600
    holder = sfn.start_execution(stateMachineArn=_machine(sfn, "holds", WAITS), name="holder", input="{}")
    in_wait = ["ExecutionStarted", "WaitStateEntered"]
    assert poll_until(
        lambda: [event["type"] for event in _history(sfn, holder["executionArn"])] == in_wait,
        timeout=BOUND,
        interval=0.02,
    )

    # When another execution is started, it waits for the slot
    queued = sfn.start_execution(stateMachineArn=_machine(sfn, "passes", PASSES), name="queued", input='{"n": 2}')
    assert slots.queued() == 1

    # Then StartExecution has answered as AWS does: it is RUNNING, and its history holds ExecutionStarted
    described = sfn.describe_execution(executionArn=queued["executionArn"])
    assert described["status"] == "RUNNING"
    started = _history(sfn, queued["executionArn"])
    assert [event["type"] for event in started] == ["ExecutionStarted"]
    assert json.loads(started[0]["executionStartedEventDetails"]["input"]) == {"n": 2}
    assert started[0]["executionStartedEventDetails"]["roleArn"] == ROLE

    # And when it is stopped while queued, it ends ABORTED before its first state, and the slot serves on
    sfn.stop_execution(executionArn=queued["executionArn"], error="Operator", cause="stopped while queued")
    sfn.stop_execution(executionArn=holder["executionArn"])
    assert _ended(sfn, queued["executionArn"])["status"] == "ABORTED"
    assert [event["type"] for event in _history(sfn, queued["executionArn"])] == [
        "ExecutionStarted",
        "ExecutionAborted",
    ]
    assert _ended(sfn, holder["executionArn"])["status"] == "ABORTED"


def test_an_execution_run_through_the_slots_has_the_history_and_output_of_one_moto_runs_itself(
    sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one state machine, run once through the slots
    machine = _machine(sfn, "passes", PASSES)
    through_slots = sfn.start_execution(stateMachineArn=machine, name="slots", input='{"n": 4}')["executionArn"]
    slots_result = _ended(sfn, through_slots)

    # When the same input runs on moto's own thread per execution
    monkeypatch.setattr(ExecutionWorker, "start", original_attribute(ExecutionWorker, "start"))
    own = sfn.start_execution(stateMachineArn=machine, name="own", input='{"n": 4}')["executionArn"]
    own_result = _ended(sfn, own)

    # Then both succeed with the same output, and their histories have the same events with the same details
    assert (slots_result["status"], slots_result["output"]) == (own_result["status"], own_result["output"])
    assert json.loads(own_result["output"]) == {"doubled": 8}

    def comparable(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{key: value for key, value in event.items() if key != "timestamp"} for event in events]

    assert comparable(_history(sfn, through_slots)) == comparable(_history(sfn, own))


def test_a_wait_on_an_execution_s_end_wakes_when_it_ends_not_at_its_next_recheck(sfn: Any) -> None:
    """Given an execution in a long Wait state, and a waiter on its end that would look again only after an hour;
    When the execution is stopped;
    Then the waiter sees it ended (woken by the end itself, within the bound), and a wait on a condition that
    never holds gives up at its timeout."""
    # Given
    runtime = runtime_context.current()
    execution = sfn.start_execution(stateMachineArn=_machine(sfn, "holds", WAITS), name="held", input="{}")
    arn = execution["executionArn"]
    assert poll_until(
        lambda: "WaitStateEntered" in [event["type"] for event in _history(sfn, arn)], timeout=BOUND, interval=0.02
    )
    looked = threading.Event()
    outcome: list[bool] = []

    def ended() -> bool:
        looked.set()
        return sfn.describe_execution(executionArn=arn)["status"] != "RUNNING"

    waiter = threading.Thread(
        target=lambda: outcome.append(runtime.wait_for_execution_ends(ended, timeout=BOUND, recheck=3600))
    )
    waiter.start()
    assert looked.wait(BOUND), "the waiter never looked"

    # When
    sfn.stop_execution(executionArn=arn)

    # Then
    waiter.join(BOUND + 1)
    assert outcome == [True], "the waiter was not woken by the execution's end"
    assert runtime.wait_for_execution_ends(lambda: False, timeout=0.05, recheck=3600) is False
