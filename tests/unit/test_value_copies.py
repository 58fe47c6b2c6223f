"""The engine's copies of state data (sagepipe/local/stepfunctions/value_copies.py): equal to the source, and as
independent of it as copy.deepcopy's."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from sagepipe.local.stepfunctions.value_copies import json_deepcopy


def _state_input() -> dict[str, Any]:
    return {
        "detail": {"bucket": {"name": "data"}, "object": {"key": "a b/é.csv", "size": 10, "version-id": None}},
        "resources": ["arn:aws:s3:::data"],
        "run": {"force": False, "attempt": 1, "score": 0.75, "items": [{"a": [1, [2, {"b": None}]]}]},
    }


def test_a_json_value_is_copied_equal_and_shares_no_container_with_its_source() -> None:
    """Given a nested JSON value, when it is copied, then the copy equals the source, and writing into any dict or
    list of the copy leaves the source as it was."""
    # Given
    source = _state_input()
    before = copy.deepcopy(source)
    # When
    copied = json_deepcopy(source)
    # Then
    assert copied == source
    copied["detail"]["object"]["key"] = "changed"
    copied["resources"].append("more")
    copied["run"]["items"][0]["a"][1][1]["b"] = "written"
    assert source == before


def test_values_that_are_not_json_are_copied_by_deepcopy() -> None:
    """Given a value holding a tuple of lists, a datetime and an object with __deepcopy__, when it is copied, then
    each is copied as copy.deepcopy copies it: the tuple's lists are new, and __deepcopy__ is used."""

    # Given
    class Marked:
        def __deepcopy__(self, memo: dict[int, Any]) -> str:
            return "copied by __deepcopy__"

    stamp = datetime(2026, 12, 2, tzinfo=UTC)
    pair = ([1], [2])
    source = {"pair": pair, "at": stamp, "marked": Marked()}
    # When
    copied = json_deepcopy(source)
    # Then
    assert copied["pair"] == ([1], [2])
    assert copied["pair"][0] is not pair[0]
    assert copied["at"] == stamp
    assert copied["marked"] == "copied by __deepcopy__"


def test_a_scalar_is_its_own_copy() -> None:
    """Given immutable JSON scalars, when each is copied, then it is returned as is, as deepcopy returns it."""
    for scalar in ("text", 3, 2.5, True, None):
        assert json_deepcopy(scalar) is copy.deepcopy(scalar)
