"""JSONPath expressions are parsed once per text, not once per use.

The gap
    jsonpath_ng's `parse` builds a new PLY lexer and LALR parser, tables included, on every call. moto calls it
    for every state's ResultPath (`$`, JSONata states included), for the engine's JSONPath reads, and for every
    InputTransformer path of an EventBridge target (the trigger audit log's): in a storm of 1,000 deliveries,
    about an eighth of the emulator's CPU.

What this adapter does
    Replaces `parse` where moto reaches it (the two engine modules import it by name; moto's EventBridge imports
    `jsonpath_ng.ext.parse` inside the function, so it is replaced in jsonpath_ng.ext) with one that keeps each
    parsed expression in the runtime context's memo: a parse depends only on its text. moto only reads the
    expressions (`find`, `update_or_create` build new values and leave the expression as it was), so one object
    serves every use. Without a running runtime (moto in process), it parses as jsonpath_ng does.

How it differs from AWS
    It does not: this is only about the emulator's speed.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from sagepipe.local.core import context
from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "jsonpath_cache"
_MAX_EXPRESSIONS: Final = 1024

RESULT_PATH_MODULE: Final = "moto.stepfunctions.parser.asl.component.common.path.result_path"
JSON_PATH_MODULE: Final = "moto.stepfunctions.parser.asl.utils.json_path"
EXTENDED_MODULE: Final = "jsonpath_ng.ext"

MOTO_INTERNALS: Final = (
    Internal(f"{RESULT_PATH_MODULE}:parse", why="ResultPath parses its path (jsonpath_ng.parse) on every evaluation"),
    Internal(
        f"{JSON_PATH_MODULE}:parse",
        why="the engine's JSONPath reads parse their path (jsonpath_ng.ext.parse) on every evaluation",
    ),
    Internal(
        f"{EXTENDED_MODULE}:parse",
        why="moto's EventTemplateParser.parse imports it inside the function, for every InputTransformer path",
    ),
    Internal("moto.events.utils:EventTemplateParser.parse", parameters=("input_template", "input_paths_map", "event")),
)


@dataclass
class ParsedPaths:
    """The runtime's memo of parsed JSONPath expressions, by parser module and text."""

    expressions: dict[tuple[str, str], Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _cached(module: str, parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def cached_parse(path: str) -> Any:
        runtime = context.current_or_none()
        if runtime is None or not isinstance(path, str):
            return parse(path)
        memo = runtime.memo(ParsedPaths)
        key = (module, path)
        with memo.lock:
            found = memo.expressions.get(key)
        if found is None:
            found = parse(path)
            with memo.lock:
                if len(memo.expressions) >= _MAX_EXPRESSIONS:
                    memo.expressions.pop(next(iter(memo.expressions)))
                memo.expressions[key] = found
        return found

    return cached_parse


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    for module_name in (RESULT_PATH_MODULE, JSON_PATH_MODULE, EXTENDED_MODULE):
        module = importlib.import_module(module_name)
        replace_attribute(module, "parse", _cached(module_name, original_attribute(module, "parse")))
