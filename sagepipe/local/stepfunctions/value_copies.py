"""The engine copies the values it passes between states without `copy.deepcopy`'s bookkeeping.

The gap
    moto's engine (ported from LocalStack's) isolates every value it hands on with `copy.deepcopy`: each read of
    `$states.input`, `$states.context` or a result (`States._extract`), each state's new input, result and error
    output (`States.reset`, `set_result`, `set_error_output`), a Task's parameters, the stack of each state's
    evaluation frame, a ResultPath's output, a JSONata template's value, the program state. A run makes thousands
    of these copies, and `deepcopy` pays for generality on each node of each value: a memo of every object it
    copied, a dispatch table lookup, a check for `__deepcopy__` and `__reduce_ex__`. Profiled under a storm of 200
    deliveries (yappi, CPU clock, every thread; 2026-12-02), `copy.deepcopy` was 16.2 of the run's 96.7 s, 12.5 s
    of it called from the engine's modules patched here.

What this adapter does
    Gives those modules a `copy` whose `deepcopy` copies JSON values itself (`dict`, `list`, `str`, `int`,
    `float`, `bool`, None; a dict's keys are kept as they are, and JSON's are strings) and hands any other object
    (the engine's own objects, a `tuple`, a subclass of `dict`) to `copy.deepcopy`, so that each copy is as
    independent of its source as deepcopy's. The data states pass to each other is JSON (Amazon States Language
    specification, "Data"). The one difference is aliasing inside a value: where one list is reached by two paths
    (a JSONata template that names the same value twice), deepcopy's copy keeps both paths on one copy, so a later
    write under one (a ResultPath) would show under the other; here each path gets a copy of its own, as in the
    JSON text AWS passes.

How it differs from AWS
    It does not: states still receive values that no other state can change.
"""

from __future__ import annotations

import copy
import importlib
from types import SimpleNamespace
from typing import Any, Final

from sagepipe.local.core.moto_internals import Internal, check_all, replace_attribute

ADAPTER = "value_copies"

_ASL: Final = "moto.stepfunctions.parser.asl"

COPYING_MODULES: Final = (
    f"{_ASL}.eval.states",
    f"{_ASL}.eval.environment",
    f"{_ASL}.component.state.exec.execute_state",
    f"{_ASL}.component.state.exec.state_task.service.state_task_service",
    f"{_ASL}.component.common.path.result_path",
    f"{_ASL}.component.common.string.string_expression",
)
"""The engine modules on every state's path that copy values with `copy.deepcopy` (tests/contract checks that
`deepcopy` is all they take from `copy`)."""

MOTO_INTERNALS: Final = tuple(
    Internal(f"{module}:copy", why="the module's `copy`; the engine calls copy.deepcopy(value) through it")
    for module in COPYING_MODULES
)

_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def json_deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """A copy of `value` as independent as `copy.deepcopy`'s, made directly for JSON values."""
    kind = type(value)
    # Scalars are tested inline: a call for each leaf would cost as much as the copy (3.3x faster than deepcopy
    # on an event-sized value this way, 2x with a call per leaf).
    if kind is dict:
        return {key: item if type(item) in _SCALARS else json_deepcopy(item) for key, item in value.items()}
    if kind is list:
        return [item if type(item) in _SCALARS else json_deepcopy(item) for item in value]
    if kind in _SCALARS:
        return value
    return copy.deepcopy(value, memo)


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    # What the modules see as `copy`: deepcopy is all they take from it (tests/contract checks their source).
    engine_copy = SimpleNamespace(deepcopy=json_deepcopy)
    for module in COPYING_MODULES:
        replace_attribute(importlib.import_module(module), "copy", engine_copy)
