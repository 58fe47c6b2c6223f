"""Contract: what sagepipe/local/stepfunctions/jsonata.py assumes about moto (pinned) and jsonata-python.

One test per moto internal the adapter touches, then behavioural checks of the assumptions the adapter
builds on. When a moto upgrade breaks one, the failure says which assumption went and what to revisit.
"""

from __future__ import annotations

import copy
import inspect
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from jsonata import Jsonata, Utils
from moto.stepfunctions.parser.api import HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.string.string_expression import (
    StringJSONata,
    StringVariableSample,
)
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
from moto.stepfunctions.parser.asl.eval.states import States
from moto.stepfunctions.parser.asl.eval.variable_store import NoSuchVariable, VariableStore
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
from moto.stepfunctions.parser.asl.jsonata import validations
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

from sagepipe.local.core.moto_internals import Internal, original_attribute
from sagepipe.local.stepfunctions import jsonata as adapter


@pytest.fixture(scope="module", autouse=True)
def _adapter_installed() -> None:
    adapter.install()


@pytest.mark.parametrize("internal", adapter.MOTO_INTERNALS, ids=lambda internal: internal.path)
def test_moto_internal_is_where_the_adapter_expects_it(internal: Internal) -> None:
    internal.resolve(adapter.ADAPTER_NAME)


def test_moto_still_ships_the_jsonata_evaluator_stubbed() -> None:
    """The adapter fills _eval_jsonata; if moto now ships an evaluator, decide which one should win."""
    shipped = original_attribute(moto_jsonata, "_eval_jsonata")
    assert shipped is None, (
        "moto now ships a JSONata evaluator in asl/jsonata/jsonata.py:_eval_jsonata "
        f"({shipped!r}); revisit whether sagepipe's jsonata adapter is still needed, and what it replaces"
    )
    assert moto_jsonata._eval_jsonata is adapter._eval_composed_source


def _components(root: Any) -> list[Any]:
    """Every object reachable from a parsed program through instance attributes, lists and dicts."""
    found: list[Any] = []
    seen: set[int] = set()
    pending = [root]
    while pending:
        item = pending.pop()
        if id(item) in seen or item is None or isinstance(item, str | int | float | bool):
            continue
        seen.add(id(item))
        found.append(item)
        if isinstance(item, list | tuple):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif hasattr(item, "__dict__") and type(item).__module__.startswith("moto."):
            pending.extend(vars(item).values())
    return found


def test_moto_routes_every_jsonata_field_through_string_jsonata() -> None:
    """Arguments, Output, Assign, Condition, Items, Catch fields: each '{% %}' becomes a StringJSONata."""
    definition = """{
      "QueryLanguage": "JSONata",
      "StartAt": "Pick",
      "States": {
        "Pick": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.go %}", "Next": "Task"}],
                 "Default": "Done"},
        "Task": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
                 "Arguments": {"TableName": "{% 'arguments' %}", "Item": "{% {} %}"},
                 "Assign": {"assigned": "{% 'assign' %}"},
                 "Output": "{% 'output' %}",
                 "Catch": [{"ErrorEquals": ["States.ALL"], "Output": "{% 'catch' %}", "Next": "Done"}],
                 "Next": "Each"},
        "Each": {"Type": "Map", "Items": "{% [1, 2] %}",
                 "ItemProcessor": {"StartAt": "Inner", "States": {"Inner": {"Type": "Succeed"}}},
                 "Next": "Done"},
        "Done": {"Type": "Succeed"}
      }
    }"""
    program, _ = AmazonStateLanguageParser.parse(definition)
    expressions = {c.expression for c in _components(program) if isinstance(c, StringJSONata)}
    assert expressions >= {
        "$states.input.go",
        "'arguments'",
        "{}",
        "'assign'",
        "'output'",
        "'catch'",
        "[1, 2]",
    }, (
        "moto no longer parses every JSONata field into StringJSONata, the component whose _eval_body "
        f"sagepipe's jsonata adapter replaces; found only {sorted(expressions)}"
    )


def test_moto_routes_variable_references_through_string_variable_sample() -> None:
    definition = """{
      "StartAt": "Read",
      "States": {"Read": {"Type": "Pass", "Parameters": {"value.$": "$threshold"}, "End": true}}
    }"""
    program, _ = AmazonStateLanguageParser.parse(definition)
    samples = [c for c in _components(program) if isinstance(c, StringVariableSample)]
    assert [sample.expression for sample in samples] == ["$threshold"], (
        "moto no longer evaluates '$var' references with StringVariableSample, whose _eval_body "
        "sagepipe's jsonata adapter replaces"
    )


def test_adapter_bodies_are_installed_on_the_components_moto_uses() -> None:
    assert StringJSONata._eval_body is adapter._string_jsonata_eval_body
    assert StringVariableSample._eval_body is adapter._variable_sample_eval_body
    assert StringJSONata(expression="1 + 1").expression == "1 + 1"


def _fake_env() -> Any:
    events: list[dict[str, Any]] = []
    return SimpleNamespace(
        next_state_name="State",
        event_history_context=SimpleNamespace(source_event_id=2),
        event_manager=SimpleNamespace(add_event=lambda **event: events.append(event)),
        events=events,
    )


@pytest.mark.parametrize(
    ("rich_expression", "result", "cause"),
    [
        pytest.param("$nothing", None, "The JSONata expression '$x' returned nothing (undefined).", id="undefined"),
        pytest.param(
            "function($v){$v}",
            "",
            "The JSONata expression '$x' returned an unsupported result type.",
            id="unsupported",
        ),
    ],
)
def test_moto_validations_fail_as_the_adapter_reproduces(rich_expression: str, result: Any, cause: str) -> None:
    """validations.py (which evaluates through the adapter's _eval_jsonata) and the adapter agree."""
    env = _fake_env()
    with pytest.raises(FailureEventException) as raised:
        validations.validate_jsonata_expression_output(env, "$x", rich_expression, result)
    event_details = raised.value.failure_event.event_details
    assert event_details is not None
    details = event_details["evaluationFailedEventDetails"]
    assert details == {"error": "States.QueryEvaluationError", "cause": cause}, (
        "moto's validations.py now reports this failure differently; align the causes in sagepipe's jsonata "
        "adapter (_string_jsonata_eval_body) with it"
    )
    assert [event["event_type"].value for event in env.events] == ["EvaluationFailed"]


def test_moto_composes_states_text_with_the_encoder_the_adapter_replaced() -> None:
    """States.to_variable_declarations calls the (patched) encoder, so its text now parses."""
    states = States(context=_context({"cause": 'He said "no"\\\nC:\\temp ✓ 😀'}))
    states.reset(input_value={"cause": 'He said "no"\\\nC:\\temp ✓ 😀'})
    declarations = states.to_variable_declarations(variable_references={"$states.input.cause"})
    composed = moto_jsonata.compose_jsonata_expression("$states.input.cause", [declarations])
    assert moto_jsonata.eval_jsonata_expression(composed) == 'He said "no"\\\nC:\\temp ✓ 😀', (
        "moto's $states declarations no longer go through encode_jsonata_variable_declarations as imported "
        "into eval/states.py; find where moto composes the text now"
    )


def test_moto_composes_variable_text_with_the_encoder_the_adapter_replaced() -> None:
    store = VariableStore()
    store.set("quote", 'a "quoted"\nvalue')
    composed = moto_jsonata.compose_jsonata_expression("$quote", [store.get_variable_declarations()])
    assert moto_jsonata.eval_jsonata_expression(composed) == 'a "quoted"\nvalue', (
        "moto's variable declarations no longer go through encode_jsonata_variable_declarations as "
        "imported into eval/variable_store.py"
    )


def _context(payload: Any) -> Any:
    return {
        "Execution": {"Id": "id", "Input": payload, "Name": "name", "RoleArn": "role", "StartTime": "now"},
        "State": {"EnteredTime": "now", "Name": "State", "RetryCount": 0},
        "StateMachine": {"Id": "id", "Name": "machine"},
        "Task": None,
        "Map": None,
    }


def test_states_keeps_input_context_result_and_error_output_in__states_data() -> None:
    """The adapter binds $states to States._states_data itself, without copying."""
    states = States(context=_context({"initial": True}))
    states.reset(input_value={"input": 1})
    states.set_result({"result": 2})
    states.set_error_output({"Error": "E", "Cause": "C"})
    data = getattr(states, "_states_data", None)
    assert isinstance(data, dict), "moto's States no longer keeps its data in _states_data"
    assert data == {
        "input": {"input": 1},
        "context": states.context_object.context_object_data,
        "result": {"result": 2},
        "errorOutput": {"Error": "E", "Cause": "C"},
    }, "moto's States._states_data no longer has the shape of $states (input, context, result, errorOutput)"


def test_variable_store_get_and_assignment_tracing() -> None:
    """The adapter reads variables with VariableStore.get and assignments from _declaration_tracing."""
    store = VariableStore()
    store.set("model", "xgb")
    assert store.get("model") == "xgb"
    with pytest.raises(NoSuchVariable):
        store.get("missing")
    assert getattr(store, "_declaration_tracing", None) == {"model"}, (
        "moto's VariableStore no longer traces assignments in _declaration_tracing, which the adapter's "
        "get_assigned_variables reads"
    )
    moto_assigned = original_attribute(VariableStore, "get_assigned_variables")(store)
    assert moto_assigned == store.get_assigned_variables() == {"model": '"xgb"'}


def test_execution_states_keep_a_failure_event_exception_s_own_event() -> None:
    """The wrapped DynamoDB/API Gateway _from_error do what ExecutionState._from_error does."""
    env = _fake_env()
    failure = FailureEvent(env=env, error_name=None, event_type=HistoryEventType.TaskFailed)
    base_from_error: Any = inspect.getattr_static(ExecutionState, "_from_error")
    assert base_from_error(None, env, FailureEventException(failure_event=failure)) is failure, (
        "moto's ExecutionState._from_error no longer keeps a FailureEventException's own event; revisit the "
        "adapter's _passing_failure_events_through"
    )


# --------------------------------------------------------------------------- jsonata-python


def test_jsonata_python_keeps_null_apart_from_undefined() -> None:
    parsed = Jsonata("[$v, $missing, $data.x]")
    parsed.set_output_convert_nulls(False)
    assert parsed.evaluate(None, {"v": Utils.NULL_VALUE, "data": {"x": None}}) == [
        Utils.NULL_VALUE,
        Utils.NULL_VALUE,
    ]


def test_jsonata_python_calls_the_evaluate_entry_binding() -> None:
    """The adapter's time limit is a '__evaluate_entry' binding; jsonata-python must still call it."""
    calls: list[Any] = []
    Jsonata("1 + 2").evaluate(None, {"__evaluate_entry": lambda *node: calls.append(node)})
    assert calls, "jsonata-python no longer calls '__evaluate_entry': the adapter's time limit is inert"


def test_jsonata_python_reads_now_from_the_pinned_per_thread_instance() -> None:
    """The adapter points Jsonata.CURRENT at the copy it evaluates, because $millis() reads CURRENT.

    Left alone, CURRENT is the last Jsonata *constructed* on the thread, whose timestamp is stale.
    """
    results: list[Any] = []

    def evaluate() -> None:
        instance = copy.copy(Jsonata("$millis()"))
        Jsonata("'parsed later on this thread'")  # becomes Jsonata.CURRENT
        time.sleep(0.05)
        Jsonata.CURRENT.jsonata = instance
        results.append((instance.evaluate(None, {}), instance.timestamp))

    thread = threading.Thread(target=evaluate)
    thread.start()
    thread.join(timeout=10)
    assert results, "the evaluation thread did not finish"
    ((millis, timestamp),) = results
    assert millis == timestamp, (
        "jsonata-python's $millis() no longer reads Jsonata.CURRENT.jsonata.timestamp; revisit how the "
        "adapter's _evaluate isolates evaluations"
    )
