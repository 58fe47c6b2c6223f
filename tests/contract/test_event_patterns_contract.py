"""Contract of the moto internals sagepipe.local.eventbridge.patterns relies on (it patches nothing: it asks
moto's matcher for verdicts).

What the module relies on, beyond the names resolving: `EventPattern.load` takes the pattern's JSON text, and
`matches_event` judges a whole event; a pattern's verdict is the conjunction of its fields (so the first field
whose own sub-pattern fails is where the event differs), and moto answers for the content filters the
explanation puts in words.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sagepipe.local.core.moto_internals import Internal
from sagepipe.local.eventbridge import patterns


@pytest.mark.parametrize("internal", patterns.MOTO_INTERNALS, ids=lambda internal: internal.path)
def test_moto_internal_is_where_the_explanation_expects_it(internal: Internal) -> None:
    internal.resolve(patterns.ADAPTER)


def verdict(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    load = Internal("moto.events.models:EventPattern.load").resolve(patterns.ADAPTER)
    return bool(load(json.dumps(pattern)).matches_event(event))


def test_a_pattern_matches_only_when_each_of_its_fields_does() -> None:
    """Given a two-field pattern, then moto matches an event only when both fields match: the premise of
    explaining a mismatch by its first failing field."""
    pattern = {"source": ["a"], "detail": {"k": [{"prefix": "x"}]}}

    assert verdict(pattern, {"source": "a", "detail": {"k": "xy"}}) is True
    assert verdict(pattern, {"source": "b", "detail": {"k": "xy"}}) is False
    assert verdict(pattern, {"source": "a", "detail": {"k": "yx"}}) is False
    assert verdict({"source": ["a"]}, {"source": "a", "detail": {"k": "yx"}}) is True


@pytest.mark.parametrize(
    ("filters", "matching", "other"),
    [
        ([{"prefix": "d/"}], "d/x", "e/x"),
        ([{"suffix": ".csv"}], "a.csv", "a.json"),
        ([{"wildcard": "d/*/_SUCCESS"}], "d/1/_SUCCESS", "d/1/part"),
        ([{"numeric": [">", 0]}], 5, 0),
        ([{"anything-but": ["a"]}], "b", "a"),
        ([{"equals-ignore-case": "MAIN"}], "main", "dev"),
        ([{"cidr": "10.0.0.0/24"}], "10.0.0.7", "10.0.1.7"),
    ],
)
def test_moto_answers_each_content_filter_the_explanation_names(filters: list[Any], matching: Any, other: Any) -> None:
    pattern = {"f": filters}

    assert verdict(pattern, {"f": matching}) is True
    assert verdict(pattern, {"f": other}) is False


def test_exists_is_about_presence() -> None:
    assert verdict({"f": [{"exists": True}]}, {"f": 1}) is True
    assert verdict({"f": [{"exists": True}]}, {"g": 1}) is False
    assert verdict({"f": [{"exists": False}]}, {"g": 1}) is True
