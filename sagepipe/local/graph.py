"""The state machine as a picture of one execution: Graphviz DOT (and SVG) with the path it took.

After each local run the runtime calls `render()`, which writes ``graph.dot`` and, when Graphviz's ``dot`` is
installed, ``graph.svg`` into the run's directory. Reading the picture:

* every top-level state is one node, shaped by type (Task: rounded box; Pass: dashed box; Choice: diamond;
  Wait: hexagon; Parallel and Map: one 3-D box each, their branches are *not* expanded; Succeed and Fail:
  double-bordered terminals), plus a start dot and, when some state has ``End: true``, an end dot;
* states the execution entered are filled green, states a task failed in are red with the error in the
  label and the error and cause in the tooltip, retried states say ``retried ×N``, the state the execution
  ended in has a thick border and a bold name, states it never entered are grey;
* edges are Next, Default, one per Choice rule (labelled with the condition, shortened) and one per Catch
  (dashed, labelled with the error names); edges the execution took are thick and coloured, the others grey;
* the title says the execution's status.

The path comes from the execution history alone (`execution_path()`), so it works for any run, local or on
AWS, whose ``get_execution_history`` events are at hand.

History semantics (checked against moto 5.2.5's Step Functions engine, which the local runtime uses, and
against the HistoryEvent shape in botocore's ``stepfunctions`` service model):

* a state is entered with ``<Type>StateEntered`` and left with ``<Type>StateExited``, both naming it in
  ``stateEnteredEventDetails.name`` / ``stateExitedEventDetails.name``; a Fail state has no exit event;
* each task attempt is ``TaskScheduled``, ``TaskStarted``, then ``TaskSucceeded`` or ``TaskFailed`` (or
  ``TaskTimedOut``...); a retry is another ``TaskScheduled`` in the same state with no exit in between;
* a caught error is a failure event followed by the state's exit and the next state's entry; an uncaught
  one is followed by ``ExecutionFailed`` with the same error;
* a JSONata evaluation error is ``EvaluationFailed``, whose details name the state (``state``); no
  ``TaskScheduled`` happens when it fails the Arguments, and moto publishes it twice, the second time without
  ``state`` (treated here as an echo of the same failure, not a second attempt);
* an error the engine raises with no event of its own (``States.Runtime``, e.g. a Choice with no match and
  no Default) shows up only as ``ExecutionFailed``: it is charged to the state that was running.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = [
    "MISSING_DOT_PROBLEM",
    "ExecutionPath",
    "RenderedGraph",
    "StateError",
    "StateVisit",
    "Transition",
    "dot_string",
    "dot_to_svg",
    "dot_tooltip",
    "execution_path",
    "render",
    "state_visits",
    "to_dot",
]

MISSING_DOT_PROBLEM = "Graphviz 'dot' not found: apt-get install graphviz / brew install graphviz"
RENDER_TIMEOUT_SECONDS = 30.0
"""A state machine of a few dozen states lays out in well under a second; this only bounds a wedged dot."""

LABEL_LIMIT = 40
"""Edge labels (conditions, error names) are cut to this many characters; the tooltip keeps the full text."""
TOOLTIP_LIMIT = 600

# Colours: green for the path, red for failures, grey for what did not happen. Tests read these names, so a
# new palette does not need new tests.
PATH_FILL = "#d8f3dc"
PATH_BORDER = "#2d6a4f"
FAILED_FILL = "#ffd6d6"
FAILED_BORDER = "#c1121f"
FAIL_TERMINAL_FILL = "#ffe5d9"
UNTAKEN_FILL = "#f1f3f5"
UNTAKEN_BORDER = "#adb5bd"
UNTAKEN_FONT = "#868e96"
TAKEN_EDGE = "#2d6a4f"
TAKEN_CATCH_EDGE = "#c1121f"
UNTAKEN_EDGE = "#ced4da"
TAKEN_PENWIDTH = "2.5"
FINAL_PENWIDTH = "3.5"

_STATUS_COLOURS = {"SUCCEEDED": PATH_BORDER, "RUNNING": "#1d4ed8"}
_STATUS_FAILURE_COLOUR = FAILED_BORDER

_EXECUTION_ENDS = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionAborted": "ABORTED",
}
# Events that start one attempt of a state's work: seeing one after a failure in the same state is a retry.
_ATTEMPT_EVENTS = frozenset({"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"})
_SUCCESS_EVENTS = frozenset({"TaskSucceeded", "LambdaFunctionSucceeded", "ActivitySucceeded"})
# Failures of the work inside one state. Each carries {error, cause} in its <lowerCamelType>EventDetails.
_STATE_FAILURE_EVENTS = frozenset(
    {
        "TaskFailed",
        "TaskTimedOut",
        "TaskStartFailed",
        "TaskSubmitFailed",
        "LambdaFunctionFailed",
        "LambdaFunctionTimedOut",
        "LambdaFunctionStartFailed",
        "LambdaFunctionScheduleFailed",
        "ActivityFailed",
        "ActivityTimedOut",
        "ActivityScheduleFailed",
        "EvaluationFailed",
    }
)
# Failures of a whole Parallel or Map state (a branch or iteration failed): they belong to that state, not to
# the inner state that happens to be the most recently entered one.
_BRANCHING_FAILURE_EVENTS = frozenset({"ParallelStateFailed", "MapStateFailed", "MapRunFailed"})
# A Parallel or Map starts its branches once per attempt: a second start in the same visit is a retry.
_BRANCHING_START_EVENTS = frozenset({"ParallelStateStarted", "MapStateStarted"})
_BRANCHING_KINDS = frozenset({"Parallel", "Map"})


class StateError(NamedTuple):
    """One failure inside a state, as the history reported it."""

    error: str
    cause: str


class Transition(NamedTuple):
    """One move from a state to the next, in execution order."""

    source: str
    target: str
    caught: bool
    """True when the source left with an unhandled error, which only a Catch can do."""
    error: str | None = None
    """The caught error, to tell which of several Catch rules to the same target was taken."""


@dataclass(frozen=True)
class ExecutionPath:
    """What one execution did, in terms of the state machine's states."""

    entered: tuple[str, ...]
    """States in the order they were entered (a state may repeat; Parallel/Map inner states included)."""
    failed: frozenset[str]
    """States in which work failed at least once (caught, retried or fatal)."""
    retried: Mapping[str, int]
    """State -> number of failed attempts that were followed by another attempt in the same visit."""
    caught: frozenset[tuple[str, str]]
    """(from_state, to_state) transitions taken through a Catch."""
    final_state: str | None
    """The last top-level state entered: where the execution ended, or where it is now."""
    status: str
    """SUCCEEDED | FAILED | TIMED_OUT | ABORTED | RUNNING."""
    transitions: tuple[Transition, ...] = ()
    """Every transition in order; `caught` is the set of the caught ones."""
    errors: Mapping[str, tuple[StateError, ...]] = field(default_factory=lambda: MappingProxyType({}))
    """State -> its failures in order (what the red nodes' labels and tooltips show)."""


@dataclass(frozen=True)
class RenderedGraph:
    dot_path: Path
    svg_path: Path | None
    problem: str | None
    """Why there is no SVG (Graphviz missing, failed or too slow); None when svg_path is set."""


# --------------------------------------------------------------------------------------------- history


@dataclass
class _OpenState:
    """A state entered and not yet exited, while reading the history."""

    name: str
    kind: str  # the event type's prefix: Task, Pass, Choice, Fail, Parallel, Map...
    pending: StateError | None = None  # the last attempt's failure, until a retry or a success clears it
    started: bool = False  # Parallel and Map: their branches have started once in this visit


def _details(event: Mapping[str, Any], event_type: str) -> Mapping[str, Any]:
    # Every HistoryEvent keeps its details under "<type in lowerCamelCase>EventDetails".
    details = event.get(event_type[:1].lower() + event_type[1:] + "EventDetails")
    return details if isinstance(details, Mapping) else {}


def _state_name(event: Mapping[str, Any], key: str) -> str | None:
    details = event.get(key)
    name = details.get("name") if isinstance(details, Mapping) else None
    return name if isinstance(name, str) else None


def _error_of(event_type: str, details: Mapping[str, Any]) -> StateError:
    error = details.get("error")
    cause = details.get("cause")
    # MapStateFailed and ParallelStateFailed carry no details: their type is the best name there is.
    return StateError(
        error if isinstance(error, str) and error else event_type, cause if isinstance(cause, str) else ""
    )


def _event_id(event: Mapping[str, Any]) -> int:
    event_id = event.get("id")
    return event_id if isinstance(event_id, int) else 0


def execution_path(history: Sequence[Mapping[str, Any]]) -> ExecutionPath:
    """Reads a ``get_execution_history`` event list into the path the execution took.

    A failure belongs to the most recently entered state not yet exited (``EvaluationFailed`` names its
    state, and Parallel/Map failures belong to the innermost open Parallel/Map). A state that exits while its
    last failure is unresolved (no retry, no success after it) was caught: ASL has no other way out of a
    failed attempt, so no definition is needed to recognise a Catch.
    """
    reader = _HistoryReader()
    # Sorted by id, so a history fetched with reverseOrder=True (newest first) reads the same.
    for event in sorted(history, key=_event_id):
        reader.read(event)
    return reader.path()


class _HistoryReader:
    """The state of one pass over a history: which states are open, and what happened in them."""

    def __init__(self) -> None:
        self.entered: list[str] = []
        self.errors: dict[str, list[StateError]] = {}
        self.retried: dict[str, int] = {}
        self.transitions: list[Transition] = []
        self.open_states: list[_OpenState] = []
        self.last_exit: _OpenState | None = None
        self.final_state: str | None = None
        self.status = "RUNNING"
        self.previous_type = ""

    def read(self, event: Mapping[str, Any]) -> None:
        event_type = str(event.get("type", ""))
        if event_type.endswith("StateEntered"):
            self._entered(event, event_type.removesuffix("StateEntered"))
        elif event_type.endswith("StateExited"):
            name = _state_name(event, "stateExitedEventDetails")
            self.last_exit = _close(self.open_states, name) if name is not None else None
        elif event_type in _STATE_FAILURE_EVENTS:
            self._state_failure(event_type, _details(event, event_type))
        elif event_type in _BRANCHING_FAILURE_EVENTS:
            self._branching_failure(event_type, _details(event, event_type))
        elif event_type in _BRANCHING_START_EVENTS:
            self._branching_started()
        elif event_type in _ATTEMPT_EVENTS:
            running = self._running()
            if running is not None and running.pending is not None:
                self._retried(running)
        elif event_type in _SUCCESS_EVENTS:
            running = self._running()
            if running is not None:
                running.pending = None
        elif event_type in _EXECUTION_ENDS:
            self._execution_ended(event, event_type)
        elif event_type == "ExecutionRedriven":
            self.status = "RUNNING"
        self.previous_type = event_type

    def path(self) -> ExecutionPath:
        return ExecutionPath(
            entered=tuple(self.entered),
            failed=frozenset(self.errors),
            retried=MappingProxyType(dict(self.retried)),
            caught=frozenset((t.source, t.target) for t in self.transitions if t.caught),
            final_state=self.final_state,
            status=self.status,
            transitions=tuple(self.transitions),
            errors=MappingProxyType({name: tuple(failures) for name, failures in self.errors.items()}),
        )

    def _running(self) -> _OpenState | None:
        return self.open_states[-1] if self.open_states else None

    def _entered(self, event: Mapping[str, Any], kind: str) -> None:
        name = _state_name(event, "stateEnteredEventDetails")
        if name is None:
            return
        if self.last_exit is not None:
            pending = self.last_exit.pending
            self.transitions.append(
                Transition(self.last_exit.name, name, pending is not None, pending.error if pending else None)
            )
        self.last_exit = None
        if not self.open_states:
            # Entered with nothing else open: a top-level state (not one inside a Parallel or Map branch).
            self.final_state = name
        self.open_states.append(_OpenState(name, kind))
        self.entered.append(name)

    def _state_failure(self, event_type: str, details: Mapping[str, Any]) -> None:
        named = details.get("state")
        if event_type == "EvaluationFailed" and not named and self.previous_type in _STATE_FAILURE_EVENTS:
            # moto publishes each evaluation failure twice, the second time without "state": one failure.
            return
        owner = _find_open(self.open_states, named) if isinstance(named, str) else None
        owner = owner or self._running()
        if owner is not None:
            self._fail(owner, _error_of(event_type, details))

    def _branching_failure(self, event_type: str, details: Mapping[str, Any]) -> None:
        index = _last_index(self.open_states, lambda state: state.kind in _BRANCHING_KINDS)
        if index is None:
            return
        # ParallelStateFailed and MapStateFailed carry no error: the branch failure that caused them names it.
        failure = _error_of(event_type, details) if details.get("error") else self._branch_failure(index)
        # The branches are over: their inner states will not exit.
        del self.open_states[index + 1 :]
        self._fail(self.open_states[index], failure or _error_of(event_type, details))

    def _branching_started(self) -> None:
        index = _last_index(self.open_states, lambda state: state.kind in _BRANCHING_KINDS)
        if index is None:
            return
        state = self.open_states[index]
        if state.started:
            # A retry. moto reports no ParallelStateFailed for the attempt that is retried, only its branch's
            # failure, which is then the failure of the attempt.
            if state.pending is None:
                self._fail(state, self._branch_failure(index) or StateError(f"{state.kind}StateFailed", ""))
            self._retried(state)
        state.started = True
        del self.open_states[index + 1 :]

    def _branch_failure(self, index: int) -> StateError | None:
        inner = [state.pending for state in self.open_states[index + 1 :] if state.pending is not None]
        return inner[-1] if inner else None

    def _fail(self, state: _OpenState, failure: StateError) -> None:
        if state.pending is not None:
            # A new failure while the previous one is unresolved means another attempt ran (and failed
            # before it scheduled anything, as an Arguments evaluation error does).
            self._retried(state)
        state.pending = failure
        self.errors.setdefault(state.name, []).append(failure)

    def _retried(self, state: _OpenState) -> None:
        self.retried[state.name] = self.retried.get(state.name, 0) + 1
        state.pending = None

    def _execution_ended(self, event: Mapping[str, Any], event_type: str) -> None:
        self.status = _EXECUTION_ENDS[event_type]
        running = self._running()
        # A Fail state failing the execution is its job, not a failure in it; a pending failure is the same
        # error reaching the top. Anything else (States.Runtime...) has no event of its own, so this is the
        # only record of it.
        if event_type == "ExecutionFailed" and running is not None and running.kind != "Fail" and not running.pending:
            self._fail(running, _error_of(event_type, _details(event, event_type)))
        self.open_states.clear()
        self.last_exit = None


def _last_index(open_states: list[_OpenState], predicate: Callable[[_OpenState], bool]) -> int | None:
    for index in range(len(open_states) - 1, -1, -1):
        if predicate(open_states[index]):
            return index
    return None


def _find_open(open_states: list[_OpenState], name: str) -> _OpenState | None:
    index = _last_index(open_states, lambda state: state.name == name)
    return open_states[index] if index is not None else None


def _close(open_states: list[_OpenState], name: str) -> _OpenState | None:
    index = _last_index(open_states, lambda state: state.name == name)
    if index is None:
        return None
    state = open_states[index]
    # A Parallel or Map exiting ends every inner state still open; a plain state leaves the others alone,
    # since concurrent branches interleave their events.
    if state.kind in _BRANCHING_KINDS:
        del open_states[index:]
    else:
        del open_states[index]
    return state


# --------------------------------------------------------------------------------------------- each state's visits


@dataclass(frozen=True)
class StateVisit:
    """One time an execution was in a state: what went in and came out, when, and how many attempts it took.

    `attempts` counts the work the state scheduled (TaskScheduled and its Lambda and activity kin): 0 for states
    that schedule nothing (Pass, Choice...) and for a Task whose Arguments failed to evaluate. `input` and `output`
    are the JSON text of the history (None while the state runs, and for a Fail state, which has no exit event).
    """

    name: str
    kind: str
    entered_at: Any
    exited_at: Any
    input: str | None
    output: str | None
    attempts: int


def state_visits(history: Sequence[Mapping[str, Any]]) -> dict[str, list[StateVisit]]:
    """State name -> its visits in order, read from ``get_execution_history`` events (any order).

    A visit opens at ``<Type>StateEntered`` and closes at the ``<Type>StateExited`` that names it; attempts are
    charged to the most recently entered state still open, as `execution_path` charges failures.
    """
    visits: dict[str, list[StateVisit]] = {}
    open_visits: list[dict[str, Any]] = []

    def close(entry: dict[str, Any], exited_at: Any, output: str | None) -> None:
        visits.setdefault(entry["name"], []).append(
            StateVisit(
                entry["name"], entry["kind"], entry["entered_at"], exited_at, entry["input"], output, entry["attempts"]
            )
        )

    for event in sorted(history, key=_event_id):
        event_type = str(event.get("type", ""))
        if event_type.endswith("StateEntered"):
            name = _state_name(event, "stateEnteredEventDetails")
            if name is not None:
                details = _details(event, "stateEntered")
                entered = {
                    "name": name,
                    "kind": event_type.removesuffix("StateEntered"),
                    "entered_at": event.get("timestamp"),
                    "input": details.get("input") if isinstance(details.get("input"), str) else None,
                    "attempts": 0,
                }
                open_visits.append(entered)
        elif event_type.endswith("StateExited"):
            name = _state_name(event, "stateExitedEventDetails")
            index = next((i for i in range(len(open_visits) - 1, -1, -1) if open_visits[i]["name"] == name), None)
            if index is not None:
                output = _details(event, "stateExited").get("output")
                close(open_visits.pop(index), event.get("timestamp"), output if isinstance(output, str) else None)
        elif event_type in _ATTEMPT_EVENTS and open_visits:
            open_visits[-1]["attempts"] += 1
    for entry in open_visits:
        close(entry, None, None)
    return visits


# --------------------------------------------------------------------------------------------- DOT text


def dot_string(text: str) -> str:
    """Quotes text as a DOT string that Graphviz displays verbatim as a label.

    Inside quotes DOT only treats ``\\"`` specially, but Graphviz then reads labels as escString (``\\n``,
    ``\\l``, ``\\N``... are escapes) and decodes HTML entities (``&lt;`` shows as ``<``). So backslashes are
    doubled, quotes escaped, ``&`` written as ``&amp;``, line breaks become ``\\n`` and other control
    characters (which Graphviz rejects or mangles) become spaces. ``{ } | < > $ %`` need nothing: they are
    only special in record shapes and HTML labels, neither of which is used here.
    """
    return _quoted(text, backslash="\\\\")


def dot_tooltip(text: str) -> str:
    """Quotes text as a DOT tooltip that Graphviz shows verbatim.

    Tooltips are unescaped twice (lib/common/emit.c: ``interpretCRNL`` drops the backslash of every escape,
    then ``strdup_and_subst_obj`` reads ``\\\\`` and ``\\N``...), so a backslash takes four.
    """
    return _quoted(text, backslash="\\" * 4)


def _quoted(text: str, *, backslash: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(char if char == "\n" or (ord(char) >= 0x20 and char != "\x7f") else " " for char in text)
    escaped = text.replace("\\", backslash).replace('"', '\\"').replace("&", "&amp;").replace("\n", "\\n")
    return f'"{escaped}"'


def _shorten(text: str, limit: int) -> str:
    # Conditions are often written over several lines; one line reads better on an edge.
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


_JSONATA = re.compile(r"\s*\{%(.*)%\}\s*", re.DOTALL)


def _condition_text(rule: Mapping[str, Any]) -> str:
    """A Choice rule as one line: the JSONata Condition without ``{% %}``, or the JSONPath comparison."""
    condition = rule.get("Condition")
    if isinstance(condition, str):
        match = _JSONATA.fullmatch(condition)
        return match.group(1).strip() if match else condition.strip()
    if isinstance(condition, bool):
        return "true" if condition else "false"
    for combinator, joiner in (("And", " and "), ("Or", " or ")):
        parts = rule.get(combinator)
        if isinstance(parts, list):
            return "(" + joiner.join(_condition_text(part) for part in parts if isinstance(part, Mapping)) + ")"
    negated = rule.get("Not")
    if isinstance(negated, Mapping):
        return "not " + _condition_text(negated)
    variable = rule.get("Variable", "?")
    comparisons = [key for key in rule if key not in {"Variable", "Next", "Comment", "Assign", "Output"}]
    if comparisons:
        return f"{variable} {comparisons[0]} {json.dumps(rule[comparisons[0]], ensure_ascii=False)}"
    return str(variable)


def _error_matches(error_equals: Iterable[Any], error: str) -> bool:
    names = set(error_equals)
    # States.TaskFailed is a wildcard for every error except States.Timeout (ASL specification).
    return error in names or "States.ALL" in names or ("States.TaskFailed" in names and error != "States.Timeout")


@dataclass(frozen=True)
class _Edge:
    source: str
    target: str
    kind: str  # start | next | default | choice | catch | end
    label: str = ""
    tooltip: str = ""
    errors: tuple[str, ...] = ()


def _edges(start_node: str, end_node: str, states: Mapping[str, Any], start_at: str) -> list[_Edge]:
    edges = [_Edge(start_node, start_at, "start")] if start_at in states else []
    for name, state in states.items():
        if not isinstance(state, Mapping):
            continue
        for rule in state.get("Choices", []) or []:
            if isinstance(rule, Mapping) and isinstance(rule.get("Next"), str):
                condition = _condition_text(rule)
                full = rule["Condition"] if isinstance(rule.get("Condition"), str) else condition
                edges.append(_Edge(name, rule["Next"], "choice", _shorten(condition, LABEL_LIMIT), str(full)))
        if isinstance(state.get("Default"), str):
            edges.append(_Edge(name, state["Default"], "default", "Default", "Default"))
        if isinstance(state.get("Next"), str):
            edges.append(_Edge(name, state["Next"], "next"))
        for catcher in state.get("Catch", []) or []:
            if isinstance(catcher, Mapping) and isinstance(catcher.get("Next"), str):
                errors = tuple(str(error) for error in catcher.get("ErrorEquals", []))
                text = ", ".join(errors)
                edges.append(_Edge(name, catcher["Next"], "catch", _shorten(text, LABEL_LIMIT), text, errors))
        if state.get("End") is True:
            edges.append(_Edge(name, end_node, "end"))
    return edges


def _taken_edges(edges: list[_Edge], path: ExecutionPath, start_at: str) -> set[_Edge]:
    taken: set[_Edge] = set()
    for transition in path.transitions:
        candidates = [edge for edge in edges if (edge.source, edge.target) == (transition.source, transition.target)]
        if transition.caught:
            catchers = [edge for edge in candidates if edge.kind == "catch"]
            # Catch rules are tried in order; the first that matches the error is the one taken.
            matching = [edge for edge in catchers if transition.error and _error_matches(edge.errors, transition.error)]
            taken.update((matching or catchers)[:1])
        else:
            # The history does not say which Choice rule matched: when several lead to the same state, all of
            # them are drawn as taken.
            taken.update(edge for edge in candidates if edge.kind != "catch")
    if path.entered and path.entered[0] == start_at:
        taken.update(edge for edge in edges if edge.kind == "start")
    if path.status == "SUCCEEDED":
        taken.update(edge for edge in edges if edge.kind == "end" and edge.source == path.final_state)
    return taken


_SHAPES: Mapping[str, tuple[str, str]] = {
    # type -> (shape, style); "filled" is added for every node.
    "Task": ("box", "rounded"),
    "Pass": ("box", "dashed"),
    "Choice": ("diamond", ""),
    "Wait": ("hexagon", ""),
    "Parallel": ("box3d", ""),
    "Map": ("box3d", ""),
    "Succeed": ("box", "rounded"),
    "Fail": ("box", "rounded"),
}


def _resource_summary(resource: Any) -> str:
    if not isinstance(resource, str):
        return ""
    if resource.startswith("arn:aws:states:::"):
        return resource.removeprefix("arn:aws:states:::")
    for marker, prefix in ((":function:", "lambda:"), (":activity:", "activity:")):
        if marker in resource:
            return prefix + resource.split(marker, 1)[1]
    return resource.rsplit(":", 1)[-1]


def _unique_id(base: str, taken: Iterable[str]) -> str:
    names = set(taken)
    while base in names:
        base = "_" + base
    return base


def _attributes(**attributes: str | None) -> str:
    # Keys are fixed identifiers; every value is quoted, so no text can break the syntax. None
    # leaves the attribute out (an empty label is a value: without it Graphviz shows the node's name).
    return (
        "["
        + ", ".join(
            f"{key}={dot_tooltip(value) if key == 'tooltip' else dot_string(value)}"
            for key, value in attributes.items()
            if value is not None
        )
        + "]"
    )


def to_dot(definition: Mapping[str, Any], path: ExecutionPath, *, title: str) -> str:
    """The definition's top-level states and transitions as DOT, with the execution's path highlighted.

    Parallel and Map states are one node each: their branches are separate machines whose inner states
    would not fit the picture; the inner states still count in `path.entered`.
    """
    raw_states = definition.get("States", {})
    states: Mapping[str, Any] = raw_states if isinstance(raw_states, Mapping) else {}
    start_at = str(definition.get("StartAt", ""))
    start_node = _unique_id("__start__", states)
    end_node = _unique_id("__end__", states)
    edges = _edges(start_node, end_node, states, start_at)
    taken = _taken_edges(edges, path, start_at)
    visited = set(path.entered)

    status_colour = _STATUS_COLOURS.get(path.status, _STATUS_FAILURE_COLOUR)
    subtitle = f"status: {path.status}" + (f" · final state: {path.final_state}" if path.final_state else "")
    lines = [
        f"digraph {dot_string(title)} {{",
        "  graph "
        + _attributes(
            label=f"{title}\n{subtitle}",
            labelloc="t",
            fontname="Helvetica",
            fontsize="16",
            fontcolor=status_colour,
            rankdir="TB",
            nodesep="0.35",
            ranksep="0.45",
            tooltip=subtitle,
        )
        + ";",
        "  node " + _attributes(fontname="Helvetica", fontsize="11", margin="0.15,0.06") + ";",
        "  edge " + _attributes(fontname="Helvetica", fontsize="9", arrowsize="0.7") + ";",
        f"  {dot_string(start_node)} "
        + _attributes(
            label="",
            shape="circle",
            width="0.22",
            fixedsize="true",
            style="filled",
            fillcolor="#212529" if path.entered else UNTAKEN_BORDER,
            color="#212529" if path.entered else UNTAKEN_BORDER,
            tooltip="start",
            **{"class": "start"},
        )
        + ";",
    ]
    if any(edge.kind == "end" for edge in edges):
        ended = any(edge.kind == "end" for edge in taken)
        lines.append(
            f"  {dot_string(end_node)} "
            + _attributes(
                label="",
                shape="doublecircle",
                width="0.18",
                fixedsize="true",
                style="filled",
                fillcolor="#212529" if ended else UNTAKEN_BORDER,
                color="#212529" if ended else UNTAKEN_BORDER,
                tooltip="end",
                **{"class": "end"},
            )
            + ";"
        )
    for name, state in states.items():
        lines.append(f"  {dot_string(name)} " + _node_attributes(name, state, path, visited) + ";")
    for edge in edges:
        lines.append(
            f"  {dot_string(edge.source)} -> {dot_string(edge.target)} " + _edge_attributes(edge, edge in taken) + ";"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node_attributes(name: str, state: Any, path: ExecutionPath, visited: set[str]) -> str:
    state = state if isinstance(state, Mapping) else {}
    kind = str(state.get("Type", ""))
    shape, style = _SHAPES.get(kind, ("box", ""))
    label_lines = [name]
    if kind == "Task" and (resource := _resource_summary(state.get("Resource"))):
        label_lines.append(resource)
    elif kind == "Parallel":
        label_lines.append(f"Parallel · {len(state.get('Branches', []) or [])} branches")
    elif kind in {"Map", "Wait"}:
        label_lines.append(kind)
    tooltip = str(state.get("Comment", "")) or kind
    classes = ["state", kind.lower()]

    entered_times = path.entered.count(name)
    if entered_times > 1:
        label_lines.append(f"entered ×{entered_times}")
    if retries := path.retried.get(name, 0):
        label_lines.append(f"retried ×{retries}")
        classes.append("retried")

    failures = path.errors.get(name, ())
    if name in visited and (name in path.failed or failures):
        fill, border, font, penwidth = FAILED_FILL, FAILED_BORDER, FAILED_BORDER, "2.5"
        distinct = list(dict.fromkeys(failure.error for failure in failures))
        label_lines.extend("✗ " + _shorten(error, LABEL_LIMIT) for error in distinct[:2])
        if len(distinct) > 2:
            label_lines.append(f"(+{len(distinct) - 2} more)")
        tooltip = _shorten(
            "\n".join(f"{failure.error}: {failure.cause}" if failure.cause else failure.error for failure in failures),
            TOOLTIP_LIMIT,
        )
        classes += ["taken", "failed"]
    elif name in visited:
        fill, border, font, penwidth = PATH_FILL, PATH_BORDER, "#081c15", "1.5"
        if kind == "Fail":
            fill, border = FAIL_TERMINAL_FILL, FAILED_BORDER
        classes.append("taken")
    else:
        fill, border, font, penwidth = UNTAKEN_FILL, UNTAKEN_BORDER, UNTAKEN_FONT, "1"
        classes.append("untaken")

    fontname = "Helvetica"
    if name == path.final_state:
        penwidth, fontname = FINAL_PENWIDTH, "Helvetica-Bold"
        classes.append("final")
    return _attributes(
        label="\n".join(label_lines),
        shape=shape,
        style=",".join(part for part in (style, "filled") if part),
        fillcolor=fill,
        color=border,
        fontcolor=font,
        penwidth=penwidth,
        fontname=fontname,
        # Succeed and Fail end the execution: a double border, like a terminal in a flowchart.
        peripheries="2" if kind in {"Succeed", "Fail"} else None,
        tooltip=tooltip,
        **{"class": " ".join(classes)},
    )


def _edge_attributes(edge: _Edge, taken: bool) -> str:
    style = "dashed" if edge.kind == "catch" else "solid"
    if taken:
        colour = TAKEN_CATCH_EDGE if edge.kind == "catch" else TAKEN_EDGE
        return _attributes(
            label=edge.label,
            tooltip=edge.tooltip or edge.kind,
            style=f"{style},bold",
            color=colour,
            fontcolor=colour,
            penwidth=TAKEN_PENWIDTH,
            **{"class": f"transition {edge.kind} taken"},
        )
    return _attributes(
        label=edge.label,
        tooltip=edge.tooltip or edge.kind,
        style=style,
        color=UNTAKEN_EDGE,
        fontcolor=UNTAKEN_FONT,
        penwidth="1",
        **{"class": f"transition {edge.kind} untaken"},
    )


# --------------------------------------------------------------------------------------------- files


def dot_to_svg(dot: str) -> tuple[str | None, str | None]:
    """DOT text laid out as SVG by Graphviz's ``dot``: (the SVG, None), or (None, why not) when ``dot`` is
    missing, fails or hangs. For callers that keep the picture in memory (the console); `render` writes files."""
    executable = shutil.which("dot")
    if executable is None:
        return None, MISSING_DOT_PROBLEM
    try:
        completed = subprocess.run(
            [executable, "-Tsvg"],
            input=dot,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=RENDER_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"Graphviz 'dot' did not finish within {RENDER_TIMEOUT_SECONDS:g} s"
    except OSError as error:
        return None, f"Graphviz 'dot' could not run: {error}"
    if completed.returncode != 0 or not completed.stdout.strip():
        detail = _shorten(completed.stderr, 300) or "no message"
        return None, f"Graphviz 'dot' failed (exit {completed.returncode}): {detail}"
    return completed.stdout, None


def render(
    definition: Mapping[str, Any], history: Sequence[Mapping[str, Any]], out_dir: Path, *, title: str
) -> RenderedGraph:
    """Writes ``out_dir/graph.dot`` and, when Graphviz's ``dot`` is on PATH, ``out_dir/graph.svg``.

    A missing, failing or hanging ``dot`` is reported in `RenderedGraph.problem`, never raised: the picture
    is a convenience, and the run it describes has already finished.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    dot_path = out_dir / "graph.dot"
    dot_path.write_text(to_dot(definition, execution_path(history), title=title), encoding="utf-8")
    svg_path = out_dir / "graph.svg"
    partial = out_dir / "graph.svg.partial"
    # No stale picture of an earlier render next to a graph.dot it no longer matches.
    svg_path.unlink(missing_ok=True)

    svg, problem = dot_to_svg(dot_path.read_text(encoding="utf-8"))
    if svg is None:
        return RenderedGraph(dot_path, None, problem)
    # Written under another name and renamed, so graph.svg is never a half-written file.
    partial.write_text(svg, encoding="utf-8")
    partial.replace(svg_path)
    return RenderedGraph(dot_path, svg_path, None)
