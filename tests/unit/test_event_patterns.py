"""The explanation of why an event does not match a rule (sagepipe.local.eventbridge.patterns) agrees with moto.

Every verdict is moto's; the module finds the first field whose part of the pattern moto rejects, and says it in
words. These tests check, on every trigger rule of template.yaml (object and marker mode) against every sample
event (events/, AWS's documented samples of events that start no run among them, and one-field variants), that
"no field is explained as a mismatch" is exactly "moto's matcher matches", and what the words are for each kind
of filter.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto.events.models import EventPattern

from sagepipe.cloudformation import Resolver
from sagepipe.local.eventbridge import patterns
from sagepipe.template import PROJECT_ROOT, load_template

SAMPLES = sorted((PROJECT_ROOT / "events").glob("*.json"))
PSEUDO = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "sagepipe-test",
    "AWS::URLSuffix": "amazonaws.com",
}
BUCKET = "sagepipe-data-example"


def rule_patterns(overrides: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The trigger rules' patterns as CloudFormation resolves them (the data bucket named BUCKET)."""
    template = load_template()
    parameters = {name: spec.get("Default") for name, spec in template["Parameters"].items()} | overrides
    resolver = Resolver(template, parameters, PSEUDO, resource_ref=lambda logical_id: BUCKET)
    events = template["Resources"]["Pipeline"]["Properties"]["Events"]
    return {name: resolver.resolve(event["Properties"]["Pattern"]) for name, event in events.items()}


def sample_events() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sample in its EventBridge shape (a webhook delivery is not one), and one-field variants of each."""
    variants: list[tuple[list[str], Any]] = [
        (["detail-type"], "Object Deleted"),
        (["detail", "object", "key"], "elsewhere/train.csv"),
        (["detail", "object", "size"], 0),
        (["detail", "referenceType"], "tag"),
        (["detail", "referenceName"], "feature/x"),
        (["detail", "ref"], "refs/tags/v1"),
        (["detail", "deleted"], True),
        (["detail", "repository"], "example-org/other"),
    ]
    for path in SAMPLES:
        event = json.loads(path.read_text(encoding="utf-8"))
        if "source" not in event:
            continue
        yield path.name, event
        for field_path, value in variants:
            changed = copy.deepcopy(event)
            holder: Any = changed
            for part in field_path[:-1]:
                holder = holder.get(part) if isinstance(holder, dict) else None
            if isinstance(holder, dict) and field_path[-1] in holder:
                holder[field_path[-1]] = value
                yield f"{path.name}:{'.'.join(field_path)}={value}", changed


MODES = (("object", {"CodeRepositoryName": "example-org/training-code"}), ("marker", {"DataTriggerMode": "marker"}))
CASES = [
    pytest.param(rule, pattern, event, id=f"{mode}:{rule}:{name}")
    for mode, overrides in MODES
    for rule, pattern in rule_patterns(overrides).items()
    for name, event in sample_events()
]


@pytest.mark.parametrize(("rule", "pattern", "event"), CASES)
def test_the_explanation_agrees_with_moto_on_every_rule_and_sample(
    rule: str, pattern: dict[str, Any], event: dict[str, Any]
) -> None:
    """Given a trigger rule and a sample, then the explanation finds a mismatching field exactly when moto's own
    matcher (as the emulator's rules use it) says the event does not match."""
    moto_says = EventPattern.load(json.dumps(pattern)).matches_event(event)  # type: ignore[arg-type]
    mismatch = patterns.first_mismatch(pattern, event)
    assert (mismatch is None) is moto_says, f"{rule}: moto says {moto_says}, explanation {mismatch}"
    assert patterns.matches(pattern, event) is moto_says


def test_the_cases_cover_matches_and_mismatches() -> None:
    """The agreement above is only worth something if both verdicts occur, for every rule."""
    verdicts: dict[str, set[bool]] = {}
    for case in CASES:
        rule, pattern, event = case.values
        verdicts.setdefault(str(rule), set()).add(patterns.first_mismatch(pattern, event) is None)  # type: ignore[arg-type]
    assert set(verdicts) == {"DataUploaded", "CodeCommitPushed", "GitHubPushed", "ManualRunRequested"}
    assert all(seen == {True, False} for seen in verdicts.values()), verdicts


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PROJECT_ROOT / "events" / name).read_text(encoding="utf-8"))
    return loaded


def test_a_tag_push_is_explained_by_its_reference_type() -> None:
    """Given AWS's referenceCreated event for a tag, then the CodeCommit rule's first mismatch is referenceType."""
    pattern = rule_patterns({"CodeRepositoryName": "MyDemoRepo"})["CodeCommitPushed"]
    event = fixture("codecommit-tag-created.json")
    event["resources"] = ["arn:aws:codecommit:us-east-1:123456789012:MyDemoRepo"]

    mismatch = patterns.first_mismatch(pattern, event)

    assert mismatch is not None
    assert mismatch.describe() == "detail.referenceType is 'tag'; the rule wants 'branch'"


def test_a_branch_deletion_is_explained_by_its_event_name() -> None:
    pattern = rule_patterns({"CodeRepositoryName": "MyDemoRepo", "CodeBranch": "myBranch"})["CodeCommitPushed"]
    event = fixture("codecommit-branch-deleted.json")
    event["resources"] = ["arn:aws:codecommit:us-east-1:123456789012:MyDemoRepo"]

    mismatch = patterns.first_mismatch(pattern, event)

    assert mismatch is not None
    assert mismatch.describe() == (
        "detail.event is 'referenceDeleted'; the rule wants one of 'referenceCreated', 'referenceUpdated'"
    )


def test_an_object_deletion_is_explained_by_its_detail_type() -> None:
    event = fixture("s3-object-deleted.json")
    event["detail"]["bucket"]["name"] = BUCKET

    mismatch = patterns.first_mismatch(rule_patterns({})["DataUploaded"], event)

    assert mismatch is not None
    assert mismatch.describe() == "detail-type is 'Object Deleted'; the rule wants 'Object Created'"


def test_a_key_outside_the_data_prefix_is_explained_by_the_prefix() -> None:
    event = json.loads((PROJECT_ROOT / "events/s3-object-created.json").read_text(encoding="utf-8"))
    event["detail"]["object"]["key"] = "elsewhere/train.csv"

    mismatch = patterns.first_mismatch(rule_patterns({})["DataUploaded"], event)

    assert mismatch is not None
    assert mismatch.field == "detail.object.key"
    assert mismatch.describe() == "detail.object.key is 'elsewhere/train.csv'; the rule wants prefix 'datasets/'"


@pytest.mark.parametrize(
    ("filters", "value", "words"),
    [
        ([{"prefix": "datasets/"}], "x/y.csv", "x.f is 'x/y.csv'; the rule wants prefix 'datasets/'"),
        ([{"suffix": ".csv"}], "a.json", "x.f is 'a.json'; the rule wants suffix '.csv'"),
        ([{"wildcard": "datasets/*/_SUCCESS"}], "datasets/a.csv", "wildcard 'datasets/*/_SUCCESS'"),
        ([{"numeric": [">", 0]}], 0, "x.f is 0; the rule wants a number > 0"),
        ([{"numeric": [">=", 1, "<", 10]}], 12, "the rule wants a number >= 1 and < 10"),
        ([{"anything-but": ["a", "b"]}], "a", "x.f is 'a'; the rule wants anything but 'a' or 'b'"),
        ([{"anything-but": {"prefix": "tmp/"}}], "tmp/x", "the rule wants anything but prefix 'tmp/'"),
        ([{"exists": True}], patterns.MISSING, "x.f is missing; the rule wants the field present"),
        ([{"exists": False}], "here", "x.f is 'here'; the rule wants the field absent"),
        ([{"equals-ignore-case": "MAIN"}], "dev", "the rule wants 'MAIN' (ignoring case)"),
        ([{"cidr": "10.0.0.0/24"}], "192.168.0.1", "the rule wants an address in '10.0.0.0/24'"),
        (["main", {"prefix": "release/"}], "dev", "x.f is 'dev'; the rule wants one of 'main', prefix 'release/'"),
        ([False], True, "x.f is true; the rule wants false"),
        (["main"], patterns.MISSING, "x.f is missing; the rule wants 'main'"),
    ],
)
def test_each_kind_of_filter_is_said_in_words_and_agrees_with_moto(filters: list[Any], value: Any, words: str) -> None:
    """Given a pattern with one filter and an event it does not match, then moto agrees it does not, and the
    mismatch names the field, its value and the filter; the same filter on a matching value is no mismatch."""
    pattern = {"x": {"f": filters}}
    event: dict[str, Any] = {"x": {"other": 1} if value is patterns.MISSING else {"f": value}}

    mismatch = patterns.first_mismatch(pattern, event)

    assert EventPattern.load(json.dumps(pattern)).matches_event(event) is False  # type: ignore[arg-type]
    assert mismatch is not None
    assert words in mismatch.describe()


def test_the_first_mismatch_follows_the_pattern_s_order_and_or_is_one_field() -> None:
    """Given a pattern whose first two fields both fail, then the first is named; an $or none of whose alternatives
    matches is named as such, and an $or one alternative of which matches is no mismatch."""
    pattern: dict[str, Any] = {"source": ["a"], "detail": {"$or": [{"k": ["1"]}, {"j": ["2"]}]}}

    both = patterns.first_mismatch(pattern, {"source": "b", "detail": {"k": "0"}})
    only_or = patterns.first_mismatch(pattern, {"source": "a", "detail": {"k": "0"}})
    neither = patterns.first_mismatch(pattern, {"source": "a", "detail": {"j": "2"}})

    assert both is not None
    assert both.field == "source"
    assert only_or is not None
    assert only_or.describe() == "detail matches none of the rule's $or alternatives"
    assert neither is None
    assert patterns.matches(pattern, {"source": "a", "detail": {"j": "2"}})


def test_the_delivered_envelope_is_what_put_events_makes_of_an_entry() -> None:
    """Given a PutEvents entry, then the event matched against the rules has EventBridge's envelope, the account
    and region of the bus, and the entry's detail as an object."""
    entry = {"Source": "aws.s3", "DetailType": "Object Created", "Detail": '{"a": 1}', "Resources": ["arn:x"]}

    event = patterns.delivered(entry, account="123456789012", region="us-east-1")

    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert (event["source"], event["detail-type"], event["detail"]) == ("aws.s3", "Object Created", {"a": 1})
    assert (event["account"], event["region"], event["resources"]) == ("123456789012", "us-east-1", ["arn:x"])
