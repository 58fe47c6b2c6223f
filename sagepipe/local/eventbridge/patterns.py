"""Why an event does or does not match a rule's event pattern: moto's matcher decides, this module explains.

EventBridge matches a pattern field by field: every field the pattern names must match (an object recurses, a
list of values or filters matches when any of them does), and `$or` asks any of its alternatives to match
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html, "Event patterns" and
"Content filtering"). So the verdict of the whole pattern is the conjunction of its leaves, and the first
leaf, in the pattern's order, that does not match is the field to show.

Nothing here decides a match itself: each leaf is cut out of the pattern as a pattern of its own and handed
to moto's matcher (`moto.events.models.EventPattern`, the one the emulator's rules use). This module only
renders the leaf and the event's value in words (prefix, suffix, wildcard, numeric, anything-but, exists,
equals-ignore-case, cidr). tests/unit checks that its verdicts agree with moto's on every rule and sample.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sagepipe.local.core.moto_internals import Internal

ADAPTER = "eventbridge_patterns"

MOTO_INTERNALS: Final = (
    Internal(
        "moto.events.models:EventPattern.load",
        parameters=("raw_pattern",),
        why="parses a rule's pattern as the emulator's rules do (it is moto's matcher that decides every verdict)",
    ),
    Internal(
        "moto.events.models:EventPattern.matches_event",
        parameters=("self", "event"),
        why="the verdict of a whole pattern and of each of its leaves, on the event as EventBridge delivers it",
    ),
)


class _Missing:
    def __repr__(self) -> str:
        return "missing"


MISSING: Final = _Missing()


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """moto's verdict: does `event` match `pattern`?"""
    load = Internal("moto.events.models:EventPattern.load").resolve(ADAPTER)
    return bool(load(json.dumps(pattern)).matches_event(dict(event)))


def leaves(pattern: Mapping[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Each field the pattern constrains, in the pattern's order: its path and its list of values or filters
    (or, for `$or`, the list of alternatives at that path)."""
    for name, value in pattern.items():
        if name == "$or":
            yield (*path, "$or"), value
        elif isinstance(value, Mapping):
            yield from leaves(value, (*path, name))
        else:
            yield (*path, name), value


def _nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    nested: Any = value
    for name in reversed(path):
        nested = {name: nested}
    return dict(nested)


def value_at(event: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    found: Any = event
    for name in path:
        if not isinstance(found, Mapping) or name not in found:
            return MISSING
        found = found[name]
    return found


def _quoted(value: Any) -> str:
    return repr(value) if isinstance(value, str) else json.dumps(value)


def _filter_words(item: Any) -> str:
    """One value or content filter of a pattern, in words."""
    if not isinstance(item, Mapping) or len(item) != 1:
        return _quoted(item)
    ((name, operand),) = item.items()
    operands = operand if isinstance(operand, list) else [operand]
    listed = " or ".join(_quoted(value) for value in operands)
    if name in {"prefix", "suffix"} and isinstance(operand, Mapping):
        return f"{name} {_quoted(operand.get('equals-ignore-case'))} (ignoring case)"
    words = {
        "prefix": f"prefix {listed}",
        "suffix": f"suffix {listed}",
        "wildcard": f"wildcard {listed}",
        "equals-ignore-case": f"{listed} (ignoring case)",
        "cidr": f"an address in {listed}",
        "exists": "the field present" if operand else "the field absent",
    }
    if name == "numeric":
        pairs = zip(operands[::2], operands[1::2], strict=False)
        return "a number " + " and ".join(f"{operator} {value}" for operator, value in pairs)
    if name == "anything-but":
        inner = _filter_words(operand) if isinstance(operand, Mapping) else listed
        return f"anything but {inner}"
    return words.get(name, f"{name} {listed}")


def wanted(filters: Any) -> str:
    """What a leaf asks for, in words."""
    if not isinstance(filters, list):
        return json.dumps(filters)
    described = [_filter_words(item) for item in filters]
    return described[0] if len(described) == 1 else "one of " + ", ".join(described)


@dataclass(frozen=True)
class Mismatch:
    """The first field of an event that its rule's pattern does not accept."""

    path: tuple[str, ...]
    actual: Any
    filters: Any

    @property
    def field(self) -> str:
        return ".".join(self.path)

    def describe(self) -> str:
        if self.path[-1] == "$or":
            where = ".".join(self.path[:-1]) or "the event"
            return f"{where} matches none of the rule's $or alternatives"
        if self.actual is MISSING:
            return f"{self.field} is missing; the rule wants {wanted(self.filters)}"
        return f"{self.field} is {_quoted(self.actual)}; the rule wants {wanted(self.filters)}"


def first_mismatch(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> Mismatch | None:
    """The first field, in the pattern's order, whose own part of the pattern moto says the event does not
    match; None when every part matches (and so, by EventBridge's rules, the whole pattern)."""
    for path, filters in leaves(pattern):
        if not matches(_nest(path[:-1], {path[-1]: filters}), event):
            return Mismatch(path, value_at(event, path[:-1]) if path[-1] == "$or" else value_at(event, path), filters)
    return None


def delivered(
    entry: Mapping[str, Any], *, account: str, region: str, event_id: str = "(assigned by PutEvents)"
) -> dict[str, Any]:
    """The event EventBridge builds from a PutEvents entry, and matches rules against: its envelope (version,
    id, detail-type, source, account, time, region, resources) around the entry's detail
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html)."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": list(entry.get("Resources", [])),
        "detail": json.loads(entry["Detail"]) if isinstance(entry.get("Detail"), str) else entry.get("Detail", {}),
    }
