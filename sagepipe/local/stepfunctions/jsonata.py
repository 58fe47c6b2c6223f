"""JSONata for moto's Step Functions engine, evaluated with jsonata-python.

The gap
    moto's Step Functions interpreter (moto/stepfunctions/parser, ported from LocalStack) parses
    ``"QueryLanguage": "JSONata"`` states but ships with the evaluator stubbed out: ``_eval_jsonata`` in
    ``asl/jsonata/jsonata.py`` is ``None`` and ``eval_jsonata_expression()`` never sets it, so the first
    ``{% ... %}`` crashes the execution with ``TypeError: 'NoneType' object is not callable``. Around that
    stub moto builds a JSONata *source text* per evaluation: ``$states`` (input and context object) and
    every workflow variable are re-serialised as ``$name:=<literal>;`` declarations in front of the
    expression, with strings written as ``f'"{value}"'`` without escaping, so a variable holding a ``"``,
    a backslash or a newline (an error ``Cause``, which is usually JSON) yields text that does not parse.
    Three of the six functions AWS adds to JSONata are stubs there too (``$hash`` and ``$uuid`` return a
    "not supported" string, ``$random`` has no seed), and ``$parse`` is built on ``$eval``, which AWS
    does not allow.

What this adapter does
    ``install()`` replaces the bodies of the two moto components that evaluate JSONata,
    ``StringJSONata`` (every ``{% %}`` field: Arguments, Output, Assign, Condition, Items, timeouts...)
    and ``StringVariableSample`` (``$var`` references), with an evaluator that

    * parses each expression once with jsonata-python and caches the parsed object per expression text, in
      the runtime context (without a running runtime, each evaluation parses its expression);
    * passes ``$states`` and the workflow variables the expression references as *bindings* (Python
      objects, no serialisation, no escaping, nothing re-parsed), so a 20 KB input costs nothing extra;
    * gives every evaluation its own shallow copy of the cached object (the same isolation
      jsonata-python's own per-thread mechanism uses; see ``_evaluate``), because moto runs each
      execution, Map iteration and task attempt on its own thread;
    * provides AWS's added functions ``$partition``, ``$range``, ``$hash``, ``$random``, ``$uuid`` and
      ``$parse`` natively, and withholds ``$eval``, as AWS does (a workflow variable of the same name
      still wins, as it does with moto's declarations);
    * stops a runaway expression after ``EVALUATION_TIME_LIMIT_SECONDS`` with JSONata's D1012 error;
    * keeps moto's result checks (validations.py): undefined fails the field with
      ``States.QueryEvaluationError`` and the cause
      ``The JSONata expression '<expr>' returned nothing (undefined).``, a function result with
      ``...returned an unsupported result type.``, and a JSONata runtime error becomes the same
      catchable ``States.QueryEvaluationError`` failure with the JSONata error code and message in the
      cause, instead of an exception escaping into moto's thread;
    * copies every result into plain JSON values (``dict``/``list``/``str``/numbers/``bool``/``None``), so
      what moto stores never aliases ``$states`` or a variable, as the re-parsed text never did.

    Two service tasks, DynamoDB and API Gateway, turn every exception raised while they run into their own
    error name (``DynamoDB.AmazonDynamoDBException``...), so a JSONata failure in their ``Arguments`` was
    not catchable as ``States.QueryEvaluationError``; their ``_from_error`` is wrapped to keep the failure
    event moto's other states keep.

    Where moto still composes source text (``encode_jsonata_variable_declarations``, imported by name into
    ``eval/states.py`` and ``eval/variable_store.py``, and the ``assignedVariables`` of history events),
    strings are JSON-encoded instead of wrapped in bare quotes, and ``_eval_jsonata`` is filled with a
    jsonata-python evaluator of such text, so ``eval_jsonata_expression()`` (used by validations.py) works
    for any caller that still goes that way.

How it differs from AWS
    * The cause of a runtime error is ``The JSONata expression '<expr>' threw an error during evaluation.
      <code>: <message>``; AWS also names the field (``specified for the field 'Output/x'``), which moto
      does not track. Error codes and messages are jsonata-python's (a port of jsonata-java), and a few
      faults surface as Python exceptions (``ZeroDivisionError: float division by zero`` for ``1/0``).
    * AWS refuses a definition whose expressions read the top-level context (``$`` outside a path step,
      predicate or lambda, and ``$$``) when the state machine is created; moto's own check rejected a bare
      ``$`` anywhere (even in ``items[$ > 1]``). The adapter checks the syntax tree instead, but only when
      the expression is first evaluated, failing it with ``States.QueryEvaluationError``. Like moto, it
      does not check AWS's other creation-time rule, unqualified field names at the top level (they
      evaluate to undefined).
    * A non-JSON value nested in a result (a function inside an object) fails the field as an
      unsupported result type rather than being dropped.
    * The edge cases of the added functions that the AWS guide does not spell out (zero or negative sizes,
      non-integer arguments, the seeded sequence) follow the notes at each function below.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final

from jsonata import JException, Jsonata, Parser, Utils

from sagepipe.local.core import context
from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER_NAME: Final = "jsonata"

_PARSER: Final = "moto.stepfunctions.parser"
_JSONATA: Final = f"{_PARSER}.asl.jsonata.jsonata"
_VALIDATIONS: Final = f"{_PARSER}.asl.jsonata.validations"
_STRING_EXPRESSION: Final = f"{_PARSER}.asl.component.common.string.string_expression"
_STATES: Final = f"{_PARSER}.asl.eval.states"
_VARIABLE_STORE: Final = f"{_PARSER}.asl.eval.variable_store"
_FAILURE_EVENT: Final = f"{_PARSER}.asl.component.common.error_name.failure_event"
_ERROR_NAME: Final = f"{_PARSER}.asl.component.common.error_name"

_SERVICE: Final = f"{_PARSER}.asl.component.state.exec.state_task.service"
_KEEP_FAILURE_EVENTS = (
    "The wrapper passes FailureEventException (States.QueryEvaluationError from Arguments) through, as "
    "ExecutionState._from_error does, so that Retry and Catch see the real error."
)
_ROUTING = "If moto now routes JSONata elsewhere, point the adapter at the new component."
_FAILURES = "The adapter reports evaluation failures with moto's own failure event types."

_INTERNALS: Final[dict[str, Internal]] = {
    # --- what install() replaces
    "string_jsonata_eval": Internal(
        path=f"{_STRING_EXPRESSION}:StringJSONata._eval_body",
        parameters=("self", "env"),
        why=f"Replaced: evaluates every '{{% %}}' field (Arguments, Output, Assign, Condition). {_ROUTING}",
    ),
    "string_jsonata_init": Internal(
        path=f"{_STRING_EXPRESSION}:StringJSONata.__init__",
        parameters=("expression",),
        why="The replacement body reads the expression from self.expression.",
    ),
    "variable_sample_eval": Internal(
        path=f"{_STRING_EXPRESSION}:StringVariableSample._eval_body",
        parameters=("self", "env"),
        why=f"Replaced: evaluates '$var' references (JSONPath payloads, Choice Variable). {_ROUTING}",
    ),
    "variable_sample_init": Internal(
        path=f"{_STRING_EXPRESSION}:StringVariableSample.__init__",
        parameters=("query_language_mode", "expression"),
        why="The replacement body reads self.query_language_mode and self.expression.",
    ),
    "eval_jsonata": Internal(
        path=f"{_JSONATA}:_eval_jsonata",
        why="Filled with a jsonata-python evaluator of composed source text (eval_jsonata_expression).",
    ),
    "encode_declarations": Internal(
        path=f"{_JSONATA}:encode_jsonata_variable_declarations",
        parameters=("bindings",),
        why="Replaced so that strings are JSON-encoded (moto writes them as bare f'\"{value}\"').",
    ),
    "states_encode_declarations": Internal(
        path=f"{_STATES}:encode_jsonata_variable_declarations",
        parameters=("bindings",),
        why="states.py imports the encoder by name, so it is replaced there too.",
    ),
    "variable_store_encode_declarations": Internal(
        path=f"{_VARIABLE_STORE}:encode_jsonata_variable_declarations",
        parameters=("bindings",),
        why="variable_store.py imports the encoder by name, so it is replaced there too.",
    ),
    "assigned_variables": Internal(
        path=f"{_VARIABLE_STORE}:VariableStore.get_assigned_variables",
        parameters=("self",),
        why="Replaced: history events' assignedVariables wrote strings as bare f'\"{value}\"' too; "
        "the replacement reads VariableStore._declaration_tracing.",
    ),
    # --- what the replacements read or call
    "jsonata_exception": Internal(
        path=f"{_JSONATA}:JSONataException",
        parameters=("error", "details"),
        why="Raised by the source-text evaluator, as moto's JVM bridge did.",
    ),
    "validate_output": Internal(
        path=f"{_VALIDATIONS}:validate_jsonata_expression_output",
        parameters=("env", "expression", "rich_jsonata_expression", "jsonata_result"),
        why="The adapter's undefined / unsupported-type checks reproduce this function's failures.",
    ),
    "states": Internal(
        path=f"{_STATES}:States",
        parameters=("context",),
        why="$states is bound to the instance attribute States._states_data (input, context, result, "
        "errorOutput) without copying it.",
    ),
    "variable_get": Internal(
        path=f"{_VARIABLE_STORE}:VariableStore.get",
        parameters=("variable_identifier",),
        why="Looks up the workflow variables an expression references.",
    ),
    "no_such_variable": Internal(
        path=f"{_VARIABLE_STORE}:NoSuchVariable",
        why="Raised by VariableStore.get for a name that is not a workflow variable.",
    ),
    "jsonata_mode": Internal(
        path=f"{_PARSER}.asl.component.common.query_language:QueryLanguageMode.JSONata",
        why="StringVariableSample binds $states only in JSONata states.",
    ),
    "failure_event": Internal(
        path=f"{_FAILURE_EVENT}:FailureEvent",
        parameters=("env", "error_name", "event_type", "event_details"),
        why=_FAILURES,
    ),
    "failure_event_exception": Internal(
        path=f"{_FAILURE_EVENT}:FailureEventException",
        parameters=("failure_event",),
        why=_FAILURES,
    ),
    "evaluation_failed_details_of": Internal(
        path=f"{_FAILURE_EVENT}:FailureEventException.get_evaluation_failed_event_details",
        parameters=("self",),
        why="Builds the EvaluationFailed history event, as validations.py does.",
    ),
    "states_error_name": Internal(
        path=f"{_ERROR_NAME}.states_error_name:StatesErrorName",
        parameters=("typ",),
        why=_FAILURES,
    ),
    "query_evaluation_error": Internal(
        path=f"{_ERROR_NAME}.states_error_name_type:StatesErrorNameType.StatesQueryEvaluationError",
        why=_FAILURES,
    ),
    "states_runtime": Internal(
        path=f"{_ERROR_NAME}.states_error_name_type:StatesErrorNameType.StatesRuntime",
        why="A failing $var reference in a JSONPath state fails with States.Runtime.",
    ),
    "evaluation_failed": Internal(path=f"{_PARSER}.api:HistoryEventType.EvaluationFailed", why=_FAILURES),
    "task_failed": Internal(path=f"{_PARSER}.api:HistoryEventType.TaskFailed", why=_FAILURES),
    "evaluation_failed_details": Internal(path=f"{_PARSER}.api:EvaluationFailedEventDetails", why=_FAILURES),
    "task_failed_details": Internal(path=f"{_PARSER}.api:TaskFailedEventDetails", why=_FAILURES),
    "event_details": Internal(path=f"{_PARSER}.asl.eval.event.event_detail:EventDetails", why=_FAILURES),
    # --- service tasks that turn every exception into their own error, JSONata failures included
    "dynamodb_from_error": Internal(
        path=f"{_SERVICE}.state_task_service_dynamodb:StateTaskServiceDynamoDB._from_error",
        parameters=("self", "env", "ex"),
        why=f"Wrapped: any non-ClientError becomes DynamoDB.AmazonDynamoDBException. {_KEEP_FAILURE_EVENTS}",
    ),
    "api_gateway_from_error": Internal(
        path=f"{_SERVICE}.state_task_service_api_gateway:StateTaskServiceApiGateway._from_error",
        parameters=("self", "env", "ex"),
        why=f"Wrapped: turns every exception into an ApiGateway.* error. {_KEEP_FAILURE_EVENTS}",
    ),
    "add_event": Internal(
        path=f"{_PARSER}.asl.eval.event.event_manager:EventManager.add_event",
        parameters=("context", "event_type", "event_details"),
        why="Publishes the EvaluationFailed history event, as validations.py does.",
    ),
}

MOTO_INTERNALS: Final[tuple[Internal, ...]] = tuple(_INTERNALS.values())
"""Every moto internal this adapter touches; tests/contract resolves each one."""


@functools.cache
def _moto(role: str) -> Any:
    """A moto internal, resolved (and checked) once."""
    return _INTERNALS[role].resolve(ADAPTER_NAME)


def _owner(role: str) -> tuple[Any, str]:
    """The object holding a replaced internal, and the attribute name to replace on it."""
    module_name, _, attribute_path = _INTERNALS[role].path.partition(":")
    owner_path, _, name = attribute_path.rpartition(".")
    owner = Internal(path=f"{module_name}:{owner_path}").resolve(ADAPTER_NAME)
    return owner, name


# --------------------------------------------------------------------------- AWS's added functions
# The AWS guide "Transforming data with JSONata in Step Functions"
# (https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html) lists six functions Step
# Functions adds to JSONata 2.0.6, each the JSONata counterpart of an intrinsic documented at
# https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html, and offers $parse because
# $eval is not supported. Where the guide is silent we follow executions recorded on AWS (LocalStack's
# AWS-validated snapshots, tests/aws/services/stepfunctions/v2/intrinsic_functions/test_*_jsonata) and, for
# the remaining edge cases, what emulator authors report having measured on AWS (marked "reported" below,
# not verified here). As everywhere in JSONata, an undefined argument gives an undefined result, and
# argument types are checked with JSONata signatures, so a wrong type fails with JSONata's T0410/T0412.


class AwsFunctionError(RuntimeError):
    """An AWS-added JSONata function rejected its arguments (reported as States.QueryEvaluationError)."""


class _Native(Jsonata.JFunctionCallable):  # type: ignore[misc]  # jsonata-python is untyped
    def __init__(self, implementation: Callable[..., Any]) -> None:
        self._implementation = implementation

    def call(self, input: Any, args: Any) -> Any:
        return self._implementation(*(args or ()))


_RANGE_LIMIT: Final = 10_000_000
"""JSONata's own limit for a '..' range (error D2014), applied to $range too."""


def _partition(array: Any, chunk_size: Any) -> Any:
    """``$partition(array, chunkSize)``: ``array`` in chunks of ``chunkSize``, the last one shorter.

    Counterpart of States.ArrayPartition, whose guide asks for "a non-zero, positive integer" chunk size.
    Recorded on AWS: ``$partition([0], 3)`` = ``[[0]]`` and ``$partition([0, 1], 1)`` = ``[[0], [1]]``, so
    a single chunk stays an array of one array. Reported: a fractional size is truncated towards zero, a
    size of zero or an empty array gives undefined, a negative size is an error.
    """
    if array is None or chunk_size is None:
        return None
    size = int(chunk_size)
    if size < 0:
        raise AwsFunctionError(f"$partition: the chunk size must be a positive integer, not {chunk_size}")
    items = list(array)
    if size == 0 or not items:
        return None
    return [items[start : start + size] for start in range(0, len(items), size)]


def _range(first: Any, last: Any, step: Any) -> Any:
    """``$range(first, last, step)``: ``first``, ``first + step``, ... up to and including ``last``.

    Counterpart of States.ArrayRange; the guide's example ``$range(0, 10, 2)`` is ``[0, 2, 4, 6, 8, 10]``.
    The result is a JSONata sequence, so a single value collapses to that value, as recorded on AWS
    (``$range(1, 9, 9)`` = ``1``, ``$range(0, 10, 3)`` = ``[0, 3, 6, 9]``), and an empty range (a step
    pointing away from ``last``) is undefined (reported). Arguments are truncated towards zero (reported;
    the intrinsic takes integers); a zero step, which would never end, is an error.
    """
    if first is None or last is None or step is None:
        return None
    start, stop, increment = int(first), int(last), int(step)
    if increment == 0:
        raise AwsFunctionError("$range: the step must not be zero")
    count = max(0, (stop - start) // increment + 1)
    if count > _RANGE_LIMIT:
        raise AwsFunctionError(f"$range: {count} values exceed the limit of {_RANGE_LIMIT}")
    return Utils.create_sequence_from_iter(range(start, start + count * increment, increment))


_HASH_ALGORITHMS: Final[dict[str, str]] = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}


def _hash(value: Any, algorithm: Any) -> Any:
    """``$hash(value, algorithm)``: the lowercase hex digest of the UTF-8 bytes of ``value``.

    Counterpart of States.Hash, whose algorithms are MD5, SHA-1, SHA-256, SHA-384 and SHA-512; the name is
    matched exactly (reported: case-sensitive) and any other name is an error.
    """
    if value is None or algorithm is None:
        return None
    name = _HASH_ALGORITHMS.get(algorithm)
    if name is None:
        raise AwsFunctionError(f"$hash: the algorithm '{algorithm}' is not one of {', '.join(_HASH_ALGORITHMS)}")
    return hashlib.new(name, value.encode("utf-8"), usedforsecurity=False).hexdigest()


def _random(seed: Any = None) -> float:
    """``$random([seed])``: a number n with 0 <= n < 1; the same integer seed gives the same number.

    Replaces JSONata's ``$random()``, adding the optional integer seed of States.MathRandom. A fractional
    seed is truncated, as moto's States.MathRandom does. AWS does not document its generator, so seeded
    values are reproducible here but are not AWS's numbers.
    """
    if seed is None:
        return random.random()  # noqa: S311 - a workflow's random number, not a secret
    return random.Random(int(seed)).random()  # noqa: S311


def _uuid() -> str:
    """``$uuid()``: a random version 4 UUID (counterpart of States.UUID)."""
    return str(uuid.uuid4())


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(text: Any) -> Any:
    """``$parse(jsonString)``: the value the JSON text denotes, with JSON.parse semantics.

    The guide offers it instead of ``$eval``, which Step Functions does not support. Text that is not JSON
    (including JavaScript's NaN and Infinity, which JSON.parse refuses) is an error.
    """
    if text is None:
        return None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        raise AwsFunctionError(f"$parse: the argument is not valid JSON ({error})") from error
    return Utils.NULL_VALUE if value is None else value


_AWS_FUNCTIONS: Final[dict[str, Any]] = {
    "partition": Jsonata.JFunction(_Native(_partition), "<an:a>"),
    "range": Jsonata.JFunction(_Native(_range), "<nnn:a>"),
    "hash": Jsonata.JFunction(_Native(_hash), "<ss:s>"),
    "random": Jsonata.JFunction(_Native(_random), "<n?:n>"),
    "uuid": Jsonata.JFunction(_Native(_uuid), "<:s>"),
    "parse": Jsonata.JFunction(_Native(_parse), "<s:x>"),
    # Bound to undefined, so that calling it fails with JSONata's T1006, as on AWS.
    "eval": None,
}


# --------------------------------------------------------------------------- evaluation


class _UnsupportedResult(Exception):
    """The result holds a value JSON cannot represent (a function, a regex, a non-finite number)."""


def _to_json(value: Any) -> Any:
    """A fresh plain-JSON copy of a jsonata-python result (JSONata null and JSON null become None)."""
    if value is None or value is Utils.NULL_VALUE:
        return None
    if isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _UnsupportedResult
        return value
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    if isinstance(value, list):  # also jsonata-python's sequences (JList)
        return [_to_json(item) for item in value]
    raise _UnsupportedResult


@dataclass(frozen=True)
class _Compiled:
    parsed: Any
    """The jsonata.Jsonata object; evaluated only through per-evaluation copies."""
    names: tuple[str, ...]
    """The $names the expression references (variables and functions), without the '$'."""


_CACHE_LIMIT: Final = 4096


@dataclass
class CompiledExpressions:
    """The runtime's parsed expressions, by expression text (kept in its context, so a reset drops them)."""

    compiled: dict[str, _Compiled] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _parse_expression(expression: str) -> Any:
    parsed = Jsonata(expression)
    parsed.set_output_convert_nulls(False)  # keep JSONata null apart from undefined (None)
    for name, function in _AWS_FUNCTIONS.items():
        parsed.register_function(name, function)
    return parsed


class _UnsupportedReference(Exception):
    """The expression reads the top-level context ($ outside any path step, or $$), which AWS has not."""


def _symbols(node: Any) -> Iterator[Any]:
    """Every syntax-tree node under (and including) node."""
    pending, seen = [node], set()
    while pending:
        item = pending.pop()
        if isinstance(item, list | tuple):
            pending.extend(item)
        elif isinstance(item, Parser.Symbol) and id(item) not in seen:
            seen.add(id(item))
            yield item
            pending.extend(value for key, value in vars(item).items() if key != "_outer_instance")


def _top_level(node: Any) -> Iterator[Any]:
    """The nodes evaluated against the top-level context: the root, through the constructs that keep it.

    A path's later steps, predicates, sort terms and groupings are evaluated against the values they
    select; a lambda body keeps the context of the expression that defines it. Constructs not listed here
    count as nested, so that a valid expression is never rejected.
    """
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, list | tuple):
            pending.extend(item)
            continue
        if not isinstance(item, Parser.Symbol):
            continue
        yield item
        kind = item.type
        if kind == "path":
            pending.append(item.steps[:1])
        elif kind in ("binary", "apply"):
            pending.extend((item.lhs, item.rhs))
        elif kind == "bind":
            pending.append(item.rhs)
        elif kind == "unary":
            pending.extend((item.expressions, item.lhs_object, item.expression))
        elif kind in ("function", "partial"):
            pending.extend((item.procedure, item.arguments))
        elif kind == "lambda":
            pending.append(item.body)
        elif kind == "condition":
            pending.extend((item.condition, item.then, item._else))
        elif kind == "block":
            pending.append(item.expressions)


def _compile(expression: str) -> _Compiled:
    """The parsed expression, from the cache.

    Raises JException for a syntax error and _UnsupportedReference for a reference to the top-level
    context, which AWS refuses when the state machine is created: "You cannot use $ or $$ at the top
    level" (moto rejects a bare $ anywhere, even where JSONata binds it, as in items[$ > 1]).
    """
    runtime = context.current_or_none()
    cache = runtime.state(CompiledExpressions) if runtime is not None else CompiledExpressions()
    compiled = cache.compiled.get(expression)
    if compiled is not None:
        return compiled
    parsed = _parse_expression(expression)
    variables = [symbol.value for symbol in _symbols(parsed.ast) if symbol.type == "variable"]
    if "$" in variables:
        raise _UnsupportedReference("$$")
    if any(symbol.type == "variable" and symbol.value == "" for symbol in _top_level(parsed.ast)):
        raise _UnsupportedReference("$")
    compiled = _Compiled(parsed=parsed, names=tuple(dict.fromkeys(name for name in variables if name)))
    with cache.lock:
        if len(cache.compiled) >= _CACHE_LIMIT:
            cache.compiled.clear()
        return cache.compiled.setdefault(expression, compiled)


_ABSENT: Final = object()

EVALUATION_TIME_LIMIT_SECONDS: float = 10.0
"""A local guard against runaway expressions (a tail-recursive loop never ends): past it, an evaluation
fails with JSONata's own D1012 timeout error. AWS bounds evaluation too, with a limit it does not document."""


def _evaluate(parsed: Any, bindings: dict[str, Any]) -> Any:
    """Evaluate a parsed expression with these bindings; the raw jsonata-python result (None = undefined).

    A jsonata.Jsonata object is not safe to evaluate from two threads at once: evaluate() stores the
    current input, environment and timestamp on the object, and jsonata-python redirects evaluation to a
    per-thread instance (Jsonata.CURRENT: the last one *constructed* on that thread, else a copy of the
    first one evaluated there), whose timestamp $now() and $millis() then read, stale. So every
    evaluation runs on its own shallow copy, sharing the read-only syntax tree (the copy jsonata-python
    itself makes per thread), with Jsonata.CURRENT pointed at that copy for the duration. A copy costs a
    few attributes; a per-thread cache would be useless because moto starts a thread per execution, Map
    iteration and task attempt, and a lock would only serialise evaluations the GIL interleaves anyway.
    """
    limit = EVALUATION_TIME_LIMIT_SECONDS
    deadline = time.monotonic() + limit

    def check_deadline(expression: Any, input: Any, environment: Any) -> None:
        if time.monotonic() > deadline:
            raise JException("D1012", -1, round(limit * 1000))

    # jsonata-python calls the '__evaluate_entry' binding before evaluating each node (its Timebox uses
    # the same hook, but keeps its clock from the moment the object was constructed).
    bindings["__evaluate_entry"] = check_deadline
    instance = copy.copy(parsed)
    current = Jsonata.CURRENT
    previous = getattr(current, "jsonata", _ABSENT)
    current.jsonata = instance
    try:
        return instance.evaluate(None, bindings)
    finally:
        if previous is _ABSENT:
            del current.jsonata
        else:
            current.jsonata = previous


def _describe(error: Exception) -> str:
    if isinstance(error, JException):
        return f"{error.error}: {error}"
    if isinstance(error, AwsFunctionError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _binding(value: Any) -> Any:
    # A top-level None binding would read as undefined; JSON null must stay null.
    return Utils.NULL_VALUE if value is None else value


def _aws_timestamp(value: Any) -> Any:
    """AWS's context-object timestamp format: ISO 8601, UTC, milliseconds, 'Z' (2026-11-25T00:53:31.123Z)."""
    if isinstance(value, str) and not value.endswith("Z"):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return value


def _normalise_context_timestamps(states_data: dict[str, Any]) -> None:
    # moto stores Execution.StartTime as a datetime (JSONata sees an unsupported type) and State.EnteredTime
    # in Python's isoformat; expressions must see AWS's strings. Fixed in place, so JSONPath sees them too.
    context_object = states_data.get("context") or {}
    execution = context_object.get("Execution") or {}
    if "StartTime" in execution:
        execution["StartTime"] = _aws_timestamp(execution["StartTime"])
    state = context_object.get("State") or {}
    if "EnteredTime" in state:
        state["EnteredTime"] = _aws_timestamp(state["EnteredTime"])


def _bindings(env: Any, compiled: _Compiled, *, with_states: bool) -> dict[str, Any]:
    # Same precedence as moto's composed text: $states, then the workflow variables (which win).
    bindings: dict[str, Any] = {}
    if with_states:
        _normalise_context_timestamps(env.states._states_data)
        bindings["states"] = env.states._states_data
    variable_store = env.variable_store
    no_such_variable = _moto("no_such_variable")
    for name in compiled.names:
        try:
            bindings[name] = _binding(variable_store.get(name))
        except no_such_variable:
            continue
    return bindings


def _query_evaluation_failure(env: Any, cause: str) -> Exception:
    """A States.QueryEvaluationError failure, published as validations.py publishes its own."""
    error_name = _moto("states_error_name")(typ=_moto("query_evaluation_error"))
    failure = _moto("failure_event_exception")(
        failure_event=_moto("failure_event")(
            env=env,
            error_name=error_name,
            event_type=_moto("evaluation_failed"),
            event_details=_moto("event_details")(
                evaluationFailedEventDetails=_moto("evaluation_failed_details")(
                    error=error_name.error_name, cause=cause
                )
            ),
        )
    )
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=_moto("evaluation_failed"),
        event_details=_moto("event_details")(
            evaluationFailedEventDetails=failure.get_evaluation_failed_event_details()
        ),
    )
    return failure  # type: ignore[no-any-return]


def _runtime_failure(env: Any, cause: str) -> Exception:
    """A States.Runtime task failure, as moto reports a JSONPath that cannot be resolved."""
    error_name = _moto("states_error_name")(typ=_moto("states_runtime"))
    return _moto("failure_event_exception")(  # type: ignore[no-any-return]
        failure_event=_moto("failure_event")(
            env=env,
            error_name=error_name,
            event_type=_moto("task_failed"),
            event_details=_moto("event_details")(
                taskFailedEventDetails=_moto("task_failed_details")(error=error_name.error_name, cause=cause)
            ),
        )
    )


def _string_jsonata_eval_body(self: Any, env: Any) -> None:
    """StringJSONata._eval_body: evaluate a '{% %}' expression and push its JSON value."""
    expression: str = self.expression
    try:
        compiled = _compile(expression)
        raw = _evaluate(compiled.parsed, _bindings(env, compiled, with_states=True))
        value = _to_json(raw)
    except _UnsupportedReference as reference:
        cause = (
            f"The JSONata expression '{expression}' refers to '{reference}' at the top level, which Step "
            "Functions does not support (AWS rejects such a state machine definition)."
        )
        raise _query_evaluation_failure(env, cause) from None
    except _UnsupportedResult:
        cause = f"The JSONata expression '{expression}' returned an unsupported result type."
        raise _query_evaluation_failure(env, cause) from None
    except Exception as error:
        cause = f"The JSONata expression '{expression}' threw an error during evaluation. {_describe(error)}"
        raise _query_evaluation_failure(env, cause) from error
    if raw is None:
        cause = f"The JSONata expression '{expression}' returned nothing (undefined)."
        raise _query_evaluation_failure(env, cause)
    env.stack.append(value)


def _variable_sample_eval_body(self: Any, env: Any) -> None:
    """StringVariableSample._eval_body: evaluate a '$var...' reference and push its value (None if unset)."""
    expression: str = self.expression
    in_jsonata_state = self.query_language_mode == _moto("jsonata_mode")
    try:
        compiled = _compile(expression)
        value = _to_json(_evaluate(compiled.parsed, _bindings(env, compiled, with_states=in_jsonata_state)))
    except Exception as error:
        cause = f"The variable reference '{expression}' could not be evaluated. {_describe(error)}"
        if in_jsonata_state:
            raise _query_evaluation_failure(env, cause) from error
        raise _runtime_failure(env, cause) from error
    env.stack.append(value)


# --------------------------------------------------------------------------- composed source text


def _json_default(value: Any) -> Any:
    # moto's to_json_str encoder: dates as ISO 8601, anything else as its str().
    return value.isoformat() if isinstance(value, date) else str(value)


def _json_literal(value: Any) -> str:
    """JSON text for a value, usable as a JSONata literal.

    ensure_ascii=False: jsonata-python decodes a \\uXXXX escape per code unit, so an escaped surrogate
    pair (any emoji) would come back as two lone surrogates.
    """
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _encode_jsonata_variable_declarations(bindings: dict[str, Any]) -> str:
    """encode_jsonata_variable_declarations with every value, strings included, JSON-encoded."""
    return "".join(f"{reference}:={_json_literal(value)};" for reference, value in bindings.items())


def _get_assigned_variables(self: Any) -> dict[str, str]:
    """VariableStore.get_assigned_variables with string values JSON-encoded (history assignedVariables)."""
    return {name: _json_literal(self.get(name)) for name in self._declaration_tracing}


def _eval_composed_source(jsonata_expression: str) -> Any:
    """moto's _eval_jsonata: evaluate self-contained JSONata source text (declarations included)."""
    try:
        return _to_json(_evaluate(_parse_expression(jsonata_expression), {}))
    except Exception as error:
        raise _moto("jsonata_exception")("UNKNOWN", _describe(error)) from error


def _passing_failure_events_through(from_error: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a task's _from_error so that a FailureEventException keeps its own failure event."""

    @functools.wraps(from_error)
    def _from_error(self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, _moto("failure_event_exception")):
            return ex.failure_event
        return from_error(self, env, ex)

    return _from_error


# --------------------------------------------------------------------------- installation


def install() -> None:
    """Make moto evaluate JSONata with jsonata-python. Idempotent; fails before patching if moto moved."""
    check_all(ADAPTER_NAME, MOTO_INTERNALS)
    replacements: dict[str, Any] = {
        "string_jsonata_eval": _string_jsonata_eval_body,
        "variable_sample_eval": _variable_sample_eval_body,
        "eval_jsonata": _eval_composed_source,
        "encode_declarations": _encode_jsonata_variable_declarations,
        "states_encode_declarations": _encode_jsonata_variable_declarations,
        "variable_store_encode_declarations": _encode_jsonata_variable_declarations,
        "assigned_variables": _get_assigned_variables,
    }
    for role in ("dynamodb_from_error", "api_gateway_from_error"):
        owner, name = _owner(role)
        replacements[role] = _passing_failure_events_through(original_attribute(owner, name))
    for role, replacement in replacements.items():
        owner, name = _owner(role)
        replace_attribute(owner, name, replacement)
