"""The run graph: an execution history read into a path, drawn over pipeline.asl.json as DOT, rendered to SVG.

The histories are synthetic but shaped like the ones moto's Step Functions engine (the local runtime) and AWS
return: a task attempt is TaskScheduled/TaskStarted/TaskSucceeded|TaskFailed, a retry is another
TaskScheduled in the same state, a caught error is TaskFailed then the state's exit, a Fail state has no
exit. `test_a_history_from_the_moto_engine_reads_the_same_way` checks those shapes against the engine itself.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sagepipe.local import graph
from sagepipe.local.graph import (
    FAILED_BORDER,
    FAILED_FILL,
    FINAL_PENWIDTH,
    MISSING_DOT_PROBLEM,
    PATH_FILL,
    TAKEN_CATCH_EDGE,
    TAKEN_EDGE,
    UNTAKEN_EDGE,
    UNTAKEN_FILL,
    UNTAKEN_FONT,
    ExecutionPath,
    StateError,
    dot_string,
    dot_tooltip,
    execution_path,
    render,
    state_visits,
    to_dot,
)
from sagepipe.local.process import poll_until
from sagepipe.template import PROJECT_ROOT

DEFINITION: dict[str, Any] = json.loads(
    (PROJECT_ROOT / "statemachine" / "pipeline.asl.json").read_text(encoding="utf-8")
)
STATES: dict[str, Any] = DEFINITION["States"]
DOT_BINARY = shutil.which("dot")
needs_dot = pytest.mark.skipif(
    DOT_BINARY is None,
    reason="Graphviz 'dot' is not installed (apt-get install graphviz): the DOT text is checked, not its layout",
)
SVG_NS = "{http://www.w3.org/2000/svg}"
XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"

TRAINING_FAILURE_CAUSE = (
    '{"TrainingJobName":"sagepipe-3e5b0c1f-0-0","TrainingJobStatus":"Failed",'
    '"FailureReason":"AlgorithmError: ValueError(\\"max_depth must be > 0, got <-1>\\")\\nExitCode 1"}'
)


# --------------------------------------------------------------------------------------------- histories


class History:
    """Builds a get_execution_history event list for pipeline.asl.json, one state at a time."""

    def __init__(self, definition: dict[str, Any] = DEFINITION, *, inner: dict[str, Any] | None = None) -> None:
        # `inner`: the states of Parallel/Map branches, which the top-level States do not list.
        self.states: dict[str, Any] = {**definition["States"], **(inner or {})}
        self.events: list[dict[str, Any]] = []
        self._started = datetime(2026, 11, 24, 9, 15, 1, tzinfo=UTC)
        self.add("ExecutionStarted", executionStartedEventDetails={"input": "{}", "roleArn": "arn:aws:iam::1:role/r"})

    def add(self, event_type: str, **details: Any) -> History:
        event_id = len(self.events) + 1
        self.events.append(
            {
                "id": event_id,
                "previousEventId": event_id - 1,
                "timestamp": self._started + timedelta(seconds=event_id),
                "type": event_type,
                **details,
            }
        )
        return self

    def _kind(self, name: str) -> str:
        return str(self.states[name]["Type"])

    def enter(self, name: str) -> History:
        return self.add(f"{self._kind(name)}StateEntered", stateEnteredEventDetails={"name": name, "input": "{}"})

    def exit(self, name: str) -> History:
        return self.add(f"{self._kind(name)}StateExited", stateExitedEventDetails={"name": name, "output": "{}"})

    def attempt(self, name: str, failure: tuple[str, str] | None) -> None:
        resource = {"resourceType": "states", "resource": str(self.states[name].get("Resource", ""))}
        self.add("TaskScheduled", taskScheduledEventDetails={**resource, "region": "us-east-1", "parameters": "{}"})
        self.add("TaskStarted", taskStartedEventDetails=resource)
        if failure is None:
            self.add("TaskSucceeded", taskSucceededEventDetails={**resource, "output": "{}"})
        else:
            error, cause = failure
            self.add("TaskFailed", taskFailedEventDetails={**resource, "error": error, "cause": cause})

    def through(self, *names: str) -> History:
        """States that run without trouble (Task attempts succeed)."""
        for name in names:
            self.enter(name)
            if self._kind(name) == "Task":
                self.attempt(name, None)
            self.exit(name)
        return self

    def task(self, name: str, *failures: tuple[str, str], then: str) -> History:
        """A Task whose attempts fail with `failures`, then `then`: 'succeeds' (after the retries), 'caught'
        (the last failure goes through a Catch), 'uncaught' (the execution fails with it) or 'stays-open' (no
        exit: a branch task whose Parallel fails around it)."""
        self.enter(name)
        for failure in failures:
            self.attempt(name, failure)
        if then == "succeeds":
            self.attempt(name, None)
        if then in {"succeeds", "caught"}:
            self.exit(name)
        elif then == "uncaught":
            error, cause = failures[-1]
            self.add("ExecutionFailed", executionFailedEventDetails={"error": error, "cause": cause})
        return self

    def fail_state(self, name: str, error: str, cause: str) -> History:
        self.enter(name)
        return self.add("ExecutionFailed", executionFailedEventDetails={"error": error, "cause": cause})

    def succeeded(self) -> list[dict[str, Any]]:
        return self.add("ExecutionSucceeded", executionSucceededEventDetails={"output": "{}"}).events


PREFIX = ("DeclareVariables", "NormaliseTrigger", "RouteTrigger")
TO_IMAGE = (*PREFIX, "RecordLatestPointer", "HaveCommitAndData", "ClaimRun", "OpenRunRecord")
CACHE_MISS = ("ComputeCacheKey", "UseCachedRun", "RecordCacheKey")
FOUND_IMAGE = ("FindImage", "ImageCarriesCommitTag")
AFTER_IMAGE = (
    *CACHE_MISS,
    "StageInput",
    "StageTrainingData",
    "Train",
    "DigestArtifact",
    "EvaluateGate",
    "GatePassed",
    "RegisterModelPackage",
    "RegisteredForCachedRun",
    "RecordSuccess",
    "SealRecord",
    "NotifyOutcome",
    "NotifySuccess",
    "CheckSeal",
    "RunEnded",
)
FAILURE_BRANCH = ("DescribeFailure", "RecordFailure", "SealRecord", "NotifyOutcome", "NotifyFailure")
IMAGE_NOT_FOUND = (
    "Ecr.ImageNotFoundException",
    "The image with imageId {imageTag:'3e5b0c1f'} does not exist within the repository (Service: Ecr)",
)
RESOURCE_LIMIT = ("SageMaker.ResourceLimitExceededException", "The account-level service limit is 1 instance")


def data_run() -> list[dict[str, Any]]:
    """(a) A data upload for a commit whose image exists: FindImage succeeds, no build."""
    return History().through(*TO_IMAGE, *FOUND_IMAGE, *AFTER_IMAGE).succeeded()


def code_run() -> list[dict[str, Any]]:
    """(b) A push of a new commit: FindImage fails with ImageNotFound, caught into BuildImage."""
    history = History().through(*TO_IMAGE).task("FindImage", IMAGE_NOT_FOUND, then="caught")
    return history.through("BuildImage", *AFTER_IMAGE).succeeded()


def training_failure() -> list[dict[str, Any]]:
    """(c) Train hits the instance limit twice (retried), then the job fails; the failure branch runs."""
    history = History().through(*TO_IMAGE, *FOUND_IMAGE, *CACHE_MISS, "StageInput", "StageTrainingData")
    history.task("Train", RESOURCE_LIMIT, RESOURCE_LIMIT, ("States.TaskFailed", TRAINING_FAILURE_CAUSE), then="caught")
    history.through(*FAILURE_BRANCH)
    return history.fail_state("RunFailed", "States.TaskFailed", "Train: AlgorithmError").events


def ignored_trigger() -> list[dict[str, Any]]:
    """(d) An event that is not a reason to run: RouteTrigger sends it to Ignored."""
    return History().through(*PREFIX, "Ignored").succeeded()


SCENARIOS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "data_run": data_run,
    "code_run": code_run,
    "training_failure": training_failure,
    "ignored_trigger": ignored_trigger,
}


def successors(state: dict[str, Any]) -> set[str]:
    targets = {state.get("Next"), state.get("Default")}
    targets |= {rule.get("Next") for rule in state.get("Choices", [])}
    targets |= {catcher.get("Next") for catcher in state.get("Catch", [])}
    return {target for target in targets if isinstance(target, str)}


# --------------------------------------------------------------------------------------------- DOT reading

_ATTRIBUTE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _attributes(line: str) -> dict[str, str]:
    return dict(_ATTRIBUTE.findall(line[line.index("[") :]))


def node(dot: str, name: str) -> dict[str, str]:
    prefix = f"  {dot_string(name)} ["
    lines = [line for line in dot.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, f"expected one node {name!r}, found {len(lines)}"
    return _attributes(lines[0])


def edges(dot: str, source: str, target: str) -> list[dict[str, str]]:
    prefix = f"  {dot_string(source)} -> {dot_string(target)} ["
    return [_attributes(line) for line in dot.splitlines() if line.startswith(prefix)]


def edge(dot: str, source: str, target: str, kind: str, label: str | None = None) -> dict[str, str]:
    found = [
        attributes
        for attributes in edges(dot, source, target)
        if f" {kind} " in attributes["class"] and (label is None or attributes.get("label") == label)
    ]
    assert len(found) == 1, f"expected one {kind} edge {source} -> {target}, found {len(found)}"
    return found[0]


def is_taken(attributes: dict[str, str]) -> bool:
    return "bold" in attributes["style"] and attributes["color"] in {TAKEN_EDGE, TAKEN_CATCH_EDGE}


def is_grey_edge(attributes: dict[str, str]) -> bool:
    return "bold" not in attributes["style"] and attributes["color"] == UNTAKEN_EDGE


def is_grey_node(attributes: dict[str, str]) -> bool:
    return attributes["fillcolor"] == UNTAKEN_FILL and attributes["fontcolor"] == UNTAKEN_FONT


def svg_of(dot: str) -> str:
    assert DOT_BINARY is not None
    completed = subprocess.run(
        [DOT_BINARY, "-Tsvg"], input=dot, capture_output=True, text=True, timeout=30, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert "Warning" not in completed.stderr, completed.stderr
    return completed.stdout


def svg_root(svg: str) -> ET.Element:
    # The SVG is one dot just wrote from DOT these tests generated: not untrusted input.
    return ET.fromstring(svg)  # noqa: S314


def svg_texts(svg: str) -> list[str]:
    root = svg_root(svg)
    return [element.text or "" for element in root.iter(f"{SVG_NS}text")]


def svg_tooltips(svg: str) -> list[str]:
    root = svg_root(svg)
    return [element.attrib[XLINK_TITLE] for element in root.iter(f"{SVG_NS}a") if XLINK_TITLE in element.attrib]


# --------------------------------------------------------------------------------------------- (a) data run


def test_the_synthetic_histories_only_move_along_edges_of_the_real_definition() -> None:
    """Given the four scenario histories, when read, then every transition is a Next/Default/Choice/Catch edge of
    pipeline.asl.json and the first state is its StartAt: the scenarios describe runs this machine can make."""
    for name, scenario in SCENARIOS.items():
        path = execution_path(scenario())
        assert path.entered[0] == DEFINITION["StartAt"], name
        for transition in path.transitions:
            assert transition.target in successors(STATES[transition.source]), (name, transition)


def test_a_data_run_enters_each_state_once_in_order_and_succeeds() -> None:
    """Given a data run whose image exists, when its history is read, then the path is the no-build route in
    order, with no failure, retry or catch, ending in RunEnded with SUCCEEDED."""
    path = execution_path(data_run())

    assert path.entered == (*TO_IMAGE, *FOUND_IMAGE, *AFTER_IMAGE)
    assert path.failed == frozenset()
    assert dict(path.retried) == {}
    assert path.caught == frozenset()
    assert path.final_state == "RunEnded"
    assert path.status == "SUCCEEDED"


def test_a_data_run_is_drawn_green_along_the_path_with_the_build_greyed() -> None:
    """Given the data run, when drawn, then its states are green and its edges bold (the start edge included),
    BuildImage and the other unvisited states are grey, and the untaken Catch is a grey dashed edge."""
    dot = to_dot(DEFINITION, execution_path(data_run()), title="run-a")

    for name in (*TO_IMAGE, *FOUND_IMAGE, *AFTER_IMAGE):
        assert node(dot, name)["fillcolor"] == PATH_FILL, name
    unvisited = ("BuildImage", "Ignored", "FindClaimOwner", "RecordSkipped", "DescribeFailure", "RecordFailure")
    for name in (*unvisited, "NotifyFailure", "SealFailed", "RunFailed"):
        assert is_grey_node(node(dot, name)), name

    assert is_taken(edge(dot, "FindImage", "ImageCarriesCommitTag", "next"))
    assert is_taken(edge(dot, "__start__", "DeclareVariables", "start"))
    assert is_taken(edge(dot, "CheckSeal", "RunEnded", "default"))
    assert is_taken(edge(dot, "HaveCommitAndData", "ClaimRun", "choice"))
    build_catch = edge(dot, "FindImage", "BuildImage", "catch")
    assert is_grey_edge(build_catch)
    assert "dashed" in build_catch["style"]
    assert build_catch["label"] == "Ecr.ImageNotFoundException"
    assert is_grey_edge(edge(dot, "BuildImage", "ComputeCacheKey", "next"))
    assert is_taken(edge(dot, "RouteTrigger", "RecordLatestPointer", "default"))


def test_the_final_state_alone_is_emphasised_and_the_title_shows_the_status() -> None:
    """Given the data run, when drawn, then only RunEnded has the final border and bold name, and the graph label
    carries the title and SUCCEEDED."""
    dot = to_dot(DEFINITION, execution_path(data_run()), title="sagepipe run 7f3a")

    final = [name for name in STATES if node(dot, name)["penwidth"] == FINAL_PENWIDTH]
    assert final == ["RunEnded"]
    assert node(dot, "RunEnded")["fontname"] == "Helvetica-Bold"
    graph_line = next(line for line in dot.splitlines() if line.startswith("  graph ["))
    assert _attributes(graph_line)["label"] == "sagepipe run 7f3a\\nstatus: SUCCEEDED · final state: RunEnded"


# --------------------------------------------------------------------------------------------- (b) code run


def test_a_code_run_catches_image_not_found_into_the_build() -> None:
    """Given a code run with no image for the commit, when read, then FindImage failed once (not retried: the
    error is not in its Retry list), the move to BuildImage is a caught transition, and the run SUCCEEDED."""
    path = execution_path(code_run())

    assert path.entered == (*TO_IMAGE, "FindImage", "BuildImage", *AFTER_IMAGE)
    assert path.failed == frozenset({"FindImage"})
    assert dict(path.retried) == {}
    assert path.caught == frozenset({("FindImage", "BuildImage")})
    assert [failure.error for failure in path.errors["FindImage"]] == ["Ecr.ImageNotFoundException"]
    assert path.status == "SUCCEEDED"


def test_a_code_run_draws_findimage_red_and_only_the_matching_catch_bold() -> None:
    """Given the code run, when drawn, then FindImage is red with the error in its label and cause in its
    tooltip, its ImageNotFound Catch is bold red and dashed, while its States.ALL Catch and its Next are grey."""
    dot = to_dot(DEFINITION, execution_path(code_run()), title="run-b")

    find_image = node(dot, "FindImage")
    assert (find_image["fillcolor"], find_image["color"]) == (FAILED_FILL, FAILED_BORDER)
    assert "✗ Ecr.ImageNotFoundException" in find_image["label"]
    assert "does not exist within the repository" in find_image["tooltip"]
    caught = edge(dot, "FindImage", "BuildImage", "catch")
    assert is_taken(caught)
    assert caught["color"] == TAKEN_CATCH_EDGE
    assert "dashed" in caught["style"]
    assert is_grey_edge(edge(dot, "FindImage", "DescribeFailure", "catch"))
    assert is_grey_edge(edge(dot, "FindImage", "ImageCarriesCommitTag", "next"))
    assert is_taken(edge(dot, "BuildImage", "ComputeCacheKey", "next"))
    assert node(dot, "BuildImage")["fillcolor"] == PATH_FILL


# --------------------------------------------------------------------------------------------- (c) failure


def test_a_training_failure_counts_two_retries_and_the_catch_into_the_failure_branch() -> None:
    """Given Train failing twice with a retryable limit error and then for good, when read, then Train has 2
    retries and both errors, the move to DescribeFailure is caught, the failure branch follows, and the run is
    FAILED in RunFailed, which is not itself a failed state (a Fail state failing the run is its job)."""
    path = execution_path(training_failure())

    assert path.entered == (
        *TO_IMAGE,
        *FOUND_IMAGE,
        *CACHE_MISS,
        "StageInput",
        "StageTrainingData",
        "Train",
        *FAILURE_BRANCH,
        "RunFailed",
    )
    assert dict(path.retried) == {"Train": 2}
    assert path.failed == frozenset({"Train"})
    assert [failure.error for failure in path.errors["Train"]] == [
        "SageMaker.ResourceLimitExceededException",
        "SageMaker.ResourceLimitExceededException",
        "States.TaskFailed",
    ]
    assert path.caught == frozenset({("Train", "DescribeFailure")})
    assert path.final_state == "RunFailed"
    assert path.status == "FAILED"


def test_a_training_failure_is_drawn_with_retries_red_train_and_the_next_edge_not_the_catch() -> None:
    """Given the training failure, when drawn, then Train says 'retried ×2' and both errors, the title says
    FAILED, and RecordFailure's Next to SealRecord is bold while its Catch to NotifyFailure stays grey."""
    dot = to_dot(DEFINITION, execution_path(training_failure()), title="run-c")

    train = node(dot, "Train")
    assert train["fillcolor"] == FAILED_FILL
    assert "retried ×2" in train["label"]
    assert "✗ SageMaker.ResourceLimitExceededException" in train["label"]
    assert "✗ States.TaskFailed" in train["label"]
    assert is_taken(edge(dot, "Train", "DescribeFailure", "catch"))
    assert is_grey_edge(edge(dot, "Train", "DigestArtifact", "next"))
    assert is_taken(edge(dot, "RecordFailure", "SealRecord", "next"))
    assert is_grey_edge(edge(dot, "RecordFailure", "NotifyFailure", "catch", label="States.ALL"))
    assert is_taken(edge(dot, "NotifyOutcome", "NotifyFailure", "default"))
    assert is_taken(edge(dot, "NotifyFailure", "RunFailed", "next"))
    assert node(dot, "RunFailed")["penwidth"] == FINAL_PENWIDTH
    assert node(dot, "RunFailed")["fillcolor"] != FAILED_FILL
    assert is_grey_node(node(dot, "DigestArtifact"))
    assert "status: FAILED" in dot


def test_state_visits_give_each_states_times_attempts_input_and_output() -> None:
    """Given the training failure (Train: two retried attempts and a caught third) in shuffled order, when its
    visits are read, then Train has one visit of three attempts, one second per event from entry to exit, with the
    history's input and output; a Choice scheduled nothing; RunFailed (a Fail state) has no exit nor output."""
    history = training_failure()
    train_entered = next(event for event in history if event.get("stateEnteredEventDetails", {}).get("name") == "Train")
    train_entered["stateEnteredEventDetails"]["input"] = '{"job": "<img src=x>"}'

    visits = state_visits(list(reversed(history)))

    (train,) = visits["Train"]
    assert (train.kind, train.attempts, train.input, train.output) == ("Task", 3, '{"job": "<img src=x>"}', "{}")
    assert (train.exited_at - train.entered_at).total_seconds() == 3 * 3 + 1  # 3 attempts of 3 events, then exit
    assert [visit.attempts for visit in visits["StageInput"]] == [0]
    (run_failed,) = visits["RunFailed"]
    assert (run_failed.kind, run_failed.exited_at, run_failed.output) == ("Fail", None, None)
    assert "Ignored" not in visits


def test_a_retry_that_then_succeeds_is_a_failure_but_not_a_catch() -> None:
    """Given SealRecord throttled once and then succeeding, when read and drawn, then it counts 1 retry and a
    failure, but the move to NotifyOutcome is its Next, not its Catch (both lead there)."""
    history = History().through(*TO_IMAGE, *FOUND_IMAGE, *CACHE_MISS, "StageInput", "StageTrainingData")
    history.task("Train", ("States.TaskFailed", TRAINING_FAILURE_CAUSE), then="caught")
    history.through("DescribeFailure", "RecordFailure")
    history.task("SealRecord", ("Lambda.TooManyRequestsException", "Rate exceeded"), then="succeeds")
    history.through("NotifyOutcome", "NotifyFailure")
    events = history.fail_state("RunFailed", "States.TaskFailed", "Train").events

    path = execution_path(events)
    dot = to_dot(DEFINITION, path, title="retry")

    assert dict(path.retried) == {"SealRecord": 1}
    assert "SealRecord" in path.failed
    assert ("SealRecord", "NotifyOutcome") not in path.caught
    assert is_taken(edge(dot, "SealRecord", "NotifyOutcome", "next"))
    assert is_grey_edge(edge(dot, "SealRecord", "NotifyOutcome", "catch", label="States.ALL"))


def test_an_uncaught_failure_ends_in_the_failing_state_and_is_recorded_once() -> None:
    """Given Train failing with no Catch taken (the execution fails with the same error), when read, then Train
    is the final state and failed once: the ExecutionFailed echo adds no second error."""
    history = History().through(*TO_IMAGE, *FOUND_IMAGE, *CACHE_MISS, "StageInput", "StageTrainingData")
    events = history.task("Train", ("States.TaskFailed", TRAINING_FAILURE_CAUSE), then="uncaught").events

    path = execution_path(events)

    assert path.final_state == "Train"
    assert path.status == "FAILED"
    assert path.caught == frozenset()
    assert [failure.error for failure in path.errors["Train"]] == ["States.TaskFailed"]


# --------------------------------------------------------------------------------------------- (d) ignored


def test_an_ignored_trigger_stops_at_ignored_through_the_first_choice_rule() -> None:
    """Given an event the normaliser ignores, when read and drawn, then the run goes RouteTrigger -> Ignored
    and SUCCEEDED; the rule's edge is bold and labelled with its condition, the other rule and the Default are
    grey, and every state after RouteTrigger but Ignored is grey."""
    path = execution_path(ignored_trigger())
    dot = to_dot(DEFINITION, path, title="run-d")

    assert path.entered == (*PREFIX, "Ignored")
    assert (path.final_state, path.status) == ("Ignored", "SUCCEEDED")
    assert path.failed == frozenset()
    ignore_rule = edge(dot, "RouteTrigger", "Ignored", "choice")
    assert is_taken(ignore_rule)
    assert ignore_rule["label"] == "$run.decision = 'ignore'"
    assert ignore_rule["tooltip"] == "{% $run.decision = 'ignore' %}"
    assert is_grey_edge(edge(dot, "RouteTrigger", "ClaimRun", "choice"))
    assert is_grey_edge(edge(dot, "RouteTrigger", "RecordLatestPointer", "default"))
    assert node(dot, "Ignored")["penwidth"] == FINAL_PENWIDTH
    for name in set(STATES) - {*PREFIX, "Ignored"}:
        assert is_grey_node(node(dot, name)), name
    assert edges(dot, "Ignored", "__end__") == []  # a Succeed state is its own terminal


# --------------------------------------------------------------------------------------------- DOT text


def test_dot_string_escapes_quotes_backslashes_newlines_and_entities() -> None:
    """Given text with a quote, backslashes, a newline, an HTML entity and a control character, when quoted,
    then each becomes the DOT escape Graphviz displays verbatim; { } < > $ % pass through."""
    assert dot_string('a"b') == '"a\\"b"'
    assert dot_string("C:\\temp\\") == '"C:\\\\temp\\\\"'
    assert dot_string("one\ntwo\r\nthree") == '"one\\ntwo\\nthree"'
    assert dot_string("a &lt; b & c") == '"a &amp;lt; b &amp; c"'
    assert dot_string("bell\x07") == '"bell "'
    assert dot_string("{% $x < 3 and $y > 1 %}") == '"{% $x < 3 and $y > 1 %}"'


def test_dot_tooltip_takes_four_backslashes_for_one() -> None:
    """Given text with a backslash, when quoted as a tooltip, then the backslash is written four times (Graphviz
    unescapes tooltips twice) while quotes, newlines and '&' are escaped as in labels."""
    assert dot_tooltip('C:\\temp "x"\n&') == '"C:\\\\\\\\temp \\"x\\"\\n&amp;"'


def test_choice_labels_are_conditions_without_delimiters_cut_to_forty_characters() -> None:
    """Given RouteTrigger and HaveCommitAndData, when drawn, then each rule is labelled with its JSONata without
    {% %}, the long one cut to 40 characters with an ellipsis, its tooltip keeping the whole condition."""
    dot = to_dot(DEFINITION, execution_path(ignored_trigger()), title="labels")

    assert edge(dot, "RouteTrigger", "ClaimRun", "choice")["label"] == "$run.kind = 'manual'"
    long_rule = edge(dot, "HaveCommitAndData", "ClaimRun", "choice")
    assert long_rule["label"] == "$exists($latest.latest_commit.M) and $e…"
    assert len(long_rule["label"]) == 40
    assert long_rule["tooltip"] == STATES["HaveCommitAndData"]["Choices"][0]["Condition"]


TRICKY_DEFINITION: dict[str, Any] = {
    "QueryLanguage": "JSONata",
    "StartAt": 'Say "hi"',
    "States": {
        'Say "hi"': {"Type": "Pass", "Comment": 'A "quoted" comment, \\N and \\n are not escapes', "Next": "Pick"},
        "Pick": {
            "Type": "Choice",
            "Choices": [
                {"Condition": "{% $path = 'C:\\\\temp\\\\' %}", "Next": "Done"},
                {"Condition": "{% $w = '&lt;' or $v > 1 %}", "Next": "Done"},
                {"Condition": '{% $text = "{%}" and\n  $n < 3 and $m = "a|b" and $q = 1 %}', "Next": "Oops"},
            ],
            "Default": "Done",
        },
        "Done": {"Type": "Succeed"},
        "Oops": {"Type": "Fail", "Error": "Oops", "Cause": "{% 'x' %}"},
    },
}


def tricky_history() -> list[dict[str, Any]]:
    history = History(TRICKY_DEFINITION).through('Say "hi"', "Pick")
    return history.fail_state("Oops", "Oops", 'cause with "quotes", \\ and <tags> & {% braces %}').events


@needs_dot
def test_labels_full_of_dot_and_jsonata_syntax_render_verbatim() -> None:
    """Given a state named with quotes and conditions holding backslashes, '&lt;', '{%}', '|', '<', '>' and a
    newline, when drawn and rendered by dot, then dot accepts the DOT without warnings and the SVG shows the
    name and each label exactly, with the full conditions in the tooltips."""
    dot = to_dot(TRICKY_DEFINITION, execution_path(tricky_history()), title='a "tricky" \\ run')

    svg = svg_of(dot)
    texts = svg_texts(svg)
    assert 'Say "hi"' in texts
    assert "$path = 'C:\\\\temp\\\\'" in texts  # the JSONata text, its escapes included
    assert "$w = '&lt;' or $v > 1" in texts
    assert '$text = "{%}" and $n < 3 and $m = "a|b"…' in texts
    assert 'a "tricky" \\ run' in texts
    # Graphviz writes the second of two spaces as a no-break space: compare the words.
    tooltips = [" ".join(tooltip.split()) for tooltip in svg_tooltips(svg)]
    assert "{% $path = 'C:\\\\temp\\\\' %}" in tooltips
    assert '{% $text = "{%}" and $n < 3 and $m = "a|b" and $q = 1 %}' in tooltips
    assert 'A "quoted" comment, \\N and \\n are not escapes' in tooltips


@needs_dot
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_compiles_with_dot_and_names_every_state(scenario: str) -> None:
    """Given each scenario, when its DOT is run through `dot -Tsvg`, then dot succeeds without warnings and the
    SVG has a node titled with every state of the definition."""
    svg = svg_of(to_dot(DEFINITION, execution_path(SCENARIOS[scenario]()), title=scenario))

    titles = {element.text for element in svg_root(svg).iter(f"{SVG_NS}title")}
    assert set(STATES) <= titles


PARALLEL_INNER: dict[str, Any] = {
    "Inner": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:getItem", "End": True},
    "Other": {"Type": "Pass", "End": True},
}
PARALLEL_DEFINITION: dict[str, Any] = {
    "StartAt": "Fan",
    "States": {
        "Fan": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Inner", "States": {"Inner": PARALLEL_INNER["Inner"]}},
                {"StartAt": "Other", "States": {"Other": PARALLEL_INNER["Other"]}},
            ],
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 1}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handler"}],
            "End": True,
        },
        "Handler": {"Type": "Pass", "End": True},
    },
}
NOT_FOUND = ("DynamoDb.ResourceNotFoundException", "Requested resource not found")


def parallel_attempt(history: History) -> History:
    """One attempt of Fan as moto 5.2.5 records it: both branches start, Other passes, Inner's task fails."""
    history.add("ParallelStateStarted").enter("Inner").through("Other")
    history.attempt("Inner", NOT_FOUND)
    return history


def test_a_retried_then_caught_parallel_is_one_node_with_the_branch_error() -> None:
    """Given moto's history of a Parallel whose branch fails, is retried (a second ParallelStateStarted, no
    ParallelStateFailed for the first attempt), fails again and is caught, when read and drawn, then the
    Parallel has 1 retry and the branch's error twice, the move to Handler is caught, and the drawing has one
    3-D box for it, no node for the inner states, and the bold Catch edge."""
    history = parallel_attempt(History(PARALLEL_DEFINITION, inner=PARALLEL_INNER).enter("Fan"))
    parallel_attempt(history).add("ParallelStateFailed").exit("Fan").through("Handler")

    path = execution_path(history.succeeded())
    dot = to_dot(PARALLEL_DEFINITION, path, title="parallel")

    assert path.entered == ("Fan", "Inner", "Other", "Inner", "Other", "Handler")
    assert dict(path.retried) == {"Fan": 1}
    assert [failure.error for failure in path.errors["Fan"]] == [NOT_FOUND[0], NOT_FOUND[0]]
    assert path.failed == frozenset({"Fan", "Inner"})
    assert path.caught == frozenset({("Fan", "Handler")})
    assert path.final_state == "Handler"
    assert node(dot, "Fan")["shape"] == "box3d"
    assert "retried ×1" in node(dot, "Fan")["label"]
    assert not [line for line in dot.splitlines() if line.startswith(('  "Inner" [', '  "Other" ['))]
    assert is_taken(edge(dot, "Fan", "Handler", "catch"))


def test_an_uncaught_parallel_failure_ends_in_the_parallel_not_in_its_branch() -> None:
    """Given moto's history of a Parallel failing the execution (ParallelStateFailed without details, then
    ExecutionFailed), when read, then the final state is the Parallel, not the inner task entered last, and the
    Parallel carries the branch's error once."""
    history = parallel_attempt(History(PARALLEL_DEFINITION, inner=PARALLEL_INNER).enter("Fan"))
    history.add("ParallelStateFailed")
    history.add("ExecutionFailed", executionFailedEventDetails={"error": NOT_FOUND[0], "cause": NOT_FOUND[1]})

    path = execution_path(history.events)

    assert (path.final_state, path.status) == ("Fan", "FAILED")
    assert [failure.error for failure in path.errors["Fan"]] == [NOT_FOUND[0]]
    assert dict(path.retried) == {}


def test_a_parallel_failure_is_not_charged_to_a_state_still_waiting_in_another_branch() -> None:
    """Given a Parallel whose Inner task fails while the other branch has just entered a Wait (so the Wait is the
    most recently entered open state), when ParallelStateFailed and ExecutionFailed follow, then the Wait is not
    a failed state: the branches ended with the Parallel, which carries the error."""
    inner = {**PARALLEL_INNER, "Other": {"Type": "Wait", "Seconds": 60, "End": True}}
    history = History(PARALLEL_DEFINITION, inner=inner).enter("Fan").add("ParallelStateStarted").enter("Inner")
    history.attempt("Inner", NOT_FOUND)
    history.enter("Other").add("ParallelStateFailed")
    history.add("ExecutionFailed", executionFailedEventDetails={"error": NOT_FOUND[0], "cause": NOT_FOUND[1]})

    path = execution_path(history.events)

    assert path.failed == frozenset({"Fan", "Inner"})
    assert path.final_state == "Fan"


# --------------------------------------------------------------------------------------------- history edge cases


def test_an_evaluation_failure_published_twice_by_moto_is_one_failure_per_attempt() -> None:
    """Given the shape moto 5.2.5 gives a Task whose Arguments fail to evaluate, retried once and caught (each
    EvaluationFailed followed by a copy without 'state', no TaskScheduled), when read, then there are two
    failures, one retry, and a caught move."""
    definition: dict[str, Any] = {"States": {"T": {"Type": "Task"}, "Done": {"Type": "Succeed"}}}
    failure = {"error": "States.QueryEvaluationError", "cause": "D3137: bad"}
    history = History(definition).enter("T")
    for _ in range(2):
        history.add("EvaluationFailed", evaluationFailedEventDetails={**failure, "state": "T"})
        history.add("EvaluationFailed", evaluationFailedEventDetails=failure)
    events = history.exit("T").through("Done").succeeded()

    path = execution_path(events)

    assert len(path.errors["T"]) == 2
    assert dict(path.retried) == {"T": 1}
    assert path.caught == frozenset({("T", "Done")})


def test_a_choice_with_no_match_fails_in_the_choice_state() -> None:
    """Given a Choice that matched nothing (moto and AWS report only ExecutionFailed with States.Runtime), when
    read, then the Choice is the failed state and carries that error."""
    definition: dict[str, Any] = {"States": {"C": {"Type": "Choice"}}}
    events = (
        History(definition)
        .enter("C")
        .add("ExecutionFailed", executionFailedEventDetails={"error": "States.Runtime", "cause": "no match"})
        .events
    )

    path = execution_path(events)

    assert path.failed == frozenset({"C"})
    assert [failure.error for failure in path.errors["C"]] == ["States.Runtime"]


@pytest.mark.parametrize(
    ("last_event", "status"),
    [("ExecutionTimedOut", "TIMED_OUT"), ("ExecutionAborted", "ABORTED"), (None, "RUNNING")],
)
def test_an_unfinished_or_stopped_run_keeps_its_status_and_blames_no_state(last_event: str | None, status: str) -> None:
    """Given a run inside Train that timed out, was aborted or is still going, when read, then the status says
    so, Train is the final state, and nothing failed (a stopped run is not a failed task)."""
    history = (
        History()
        .through(*TO_IMAGE, *FOUND_IMAGE, *CACHE_MISS, "StageInput", "StageTrainingData")
        .enter("Train")
        .add("TaskScheduled")
    )
    if last_event is not None:
        history.add(last_event, **{last_event[0].lower() + last_event[1:] + "EventDetails": {"error": "x"}})

    path = execution_path(history.events)

    assert (path.status, path.final_state, path.failed) == (status, "Train", frozenset())


def test_an_empty_history_and_a_reversed_history() -> None:
    """Given no events, when read, then nothing was entered and the run is RUNNING; given a history fetched with
    reverseOrder=True, when read, then the path is the same as in id order."""
    empty = execution_path([])
    assert (empty.entered, empty.final_state, empty.status) == ((), None, "RUNNING")

    assert execution_path(list(reversed(training_failure()))) == execution_path(training_failure())


def test_a_path_built_by_hand_needs_only_the_documented_fields() -> None:
    """Given an ExecutionPath built with the six documented fields only, when drawn, then the entered states
    are green, the failed one red, and (with no transitions) only the start edge is bold."""
    path = ExecutionPath(
        entered=("DeclareVariables", "NormaliseTrigger"),
        failed=frozenset({"NormaliseTrigger"}),
        retried={"NormaliseTrigger": 1},
        caught=frozenset(),
        final_state="NormaliseTrigger",
        status="FAILED",
    )

    dot = to_dot(DEFINITION, path, title="by hand")
    errors = {"NormaliseTrigger": tuple(StateError(f"E{number}", "") for number in (1, 2, 2, 3))}
    with_errors = to_dot(DEFINITION, dataclasses.replace(path, errors=errors), title="errors")

    assert node(dot, "DeclareVariables")["fillcolor"] == PATH_FILL
    assert node(dot, "NormaliseTrigger")["fillcolor"] == FAILED_FILL
    assert "retried ×1" in node(dot, "NormaliseTrigger")["label"]
    assert is_taken(edge(dot, "__start__", "DeclareVariables", "start"))
    assert is_grey_edge(edge(dot, "DeclareVariables", "NormaliseTrigger", "next"))
    # Given its errors too, then the label lists the first two distinct ones and counts the rest.
    assert node(with_errors, "NormaliseTrigger")["label"].endswith("\\n✗ E1\\n✗ E2\\n(+1 more)")


# --------------------------------------------------------------------------------------------- render


@needs_dot
def test_render_writes_the_dot_and_a_valid_svg(tmp_path: Path) -> None:
    """Given the training failure, when rendered into a run directory, then graph.dot holds to_dot's text and
    graph.svg is an SVG document naming every state, with no problem reported."""
    out_dir = tmp_path / "runs" / "run-c"

    result = render(DEFINITION, training_failure(), out_dir, title="run-c")

    assert result.problem is None
    assert result.dot_path == out_dir / "graph.dot"
    assert result.dot_path.read_text(encoding="utf-8") == to_dot(
        DEFINITION, execution_path(training_failure()), title="run-c"
    )
    assert result.svg_path == out_dir / "graph.svg"
    svg = result.svg_path.read_text(encoding="utf-8")
    assert svg.lstrip().startswith(("<?xml", "<svg"))
    assert svg_root(svg).tag == f"{SVG_NS}svg"
    for name in STATES:
        assert f"<title>{name}</title>" in svg, name
    assert not (out_dir / "graph.svg.partial").exists()


def test_render_without_graphviz_writes_the_dot_and_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given no 'dot' on PATH and a stale graph.svg from an earlier render, when rendering, then graph.dot is
    written, no SVG is left, and the problem names the install commands instead of an exception."""
    monkeypatch.setenv("PATH", "")
    (tmp_path / "graph.svg").write_text("<svg>stale</svg>", encoding="utf-8")

    result = render(DEFINITION, data_run(), tmp_path, title="no graphviz")

    assert result.svg_path is None
    assert result.problem == MISSING_DOT_PROBLEM
    assert "apt-get install graphviz" in result.problem
    assert "brew install graphviz" in result.problem
    assert (tmp_path / "graph.dot").read_text(encoding="utf-8").startswith('digraph "no graphviz" {')
    assert not (tmp_path / "graph.svg").exists()


@pytest.fixture
def fake_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Puts a shell script named 'dot' first (and alone) on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))

    def install(body: str) -> None:
        script = bin_dir / "dot"
        script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)

    return install


def test_render_reports_a_failing_dot_instead_of_raising(tmp_path: Path, fake_dot: Callable[[str], None]) -> None:
    """Given a 'dot' that exits 1 with a message, when rendering, then there is no SVG (not even a partial one)
    and the problem carries the exit code and dot's message."""
    fake_dot('echo "Error: syntax error in line 3" >&2\nexit 1')

    result = render(DEFINITION, data_run(), tmp_path / "out", title="broken")

    assert result.svg_path is None
    assert result.problem == "Graphviz 'dot' failed (exit 1): Error: syntax error in line 3"
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["graph.dot"]


def test_render_gives_up_on_a_hanging_dot(
    tmp_path: Path, fake_dot: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a 'dot' that never finishes and a 0.2 s limit, when rendering, then render returns within about a
    second with a timeout problem and no SVG."""
    fake_dot(f"exec {sys.executable} -c 'import time; time.sleep(10)'")
    monkeypatch.setattr(graph, "RENDER_TIMEOUT_SECONDS", 0.2)

    started = time.monotonic()
    result = render(DEFINITION, data_run(), tmp_path, title="hanging")

    assert time.monotonic() - started < 3
    assert result.svg_path is None
    assert result.problem == "Graphviz 'dot' did not finish within 0.2 s"


# --------------------------------------------------------------------------------------------- the engine


def test_a_history_from_the_moto_engine_reads_the_same_way() -> None:
    """Given a task that fails, is retried once, fails again and is caught, run on moto's Step Functions engine
    (the local runtime's), when its real history is read, then the path has the failure, the retry and the
    caught move: the event shapes the synthetic histories above assume are the engine's."""
    import boto3
    from moto import mock_aws

    failing = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:dynamodb:getItem",
        "Parameters": {"TableName": "missing", "Key": {"pk": {"S": "x"}}},
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 1}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handler"}],
        "Next": "Done",
    }
    definition: dict[str, Any] = {
        "StartAt": "Lookup",
        "States": {"Lookup": failing, "Handler": {"Type": "Pass", "Next": "Done"}, "Done": {"Type": "Succeed"}},
    }
    config: Any = {"stepfunctions": {"execute_state_machine": True}}
    with mock_aws(config=config):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name="graph", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
        )
        execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")["executionArn"]
        poll_until(lambda: sfn.describe_execution(executionArn=execution)["status"] != "RUNNING", timeout=30)
        events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]

    path = execution_path(events)

    assert path.entered == ("Lookup", "Handler", "Done")
    assert path.failed == frozenset({"Lookup"})
    assert dict(path.retried) == {"Lookup": 1}
    assert path.caught == frozenset({("Lookup", "Handler")})
    assert path.status == "SUCCEEDED"
    assert {failure.error for failure in path.errors["Lookup"]} == {"DynamoDb.ResourceNotFoundException"}
