"""Every execution of a definition evaluates one program, parsed once per definition.

The gap
    moto's Step Functions engine parses the definition with ANTLR for every execution, in
    `ExecutionWorker._get_evaluation_entrypoint`: about 0.1-0.2 s of CPU for sagepipe's 25-state definition.
    A storm of 1,000 deliveries spends minutes parsing the same text, and every run pays it before its first
    state. `CreateStateMachine` parses it once more to validate it (`_validate_definition`), and so does every
    provisioning of the stack.

What this adapter does
    Parses each definition once and keeps the parsed program in the runtime context's memo (a parse depends on
    the text only, so it outlives `Emulator.reset()`: a test that provisions the stack again does not parse
    again, as the provisioner gives the pipeline key, whose ARN the definition holds, the same id in a reset
    emulator), and hands every execution that same program. Validation uses the same parse; a definition the
    parser refuses is handed to moto's own validation, which raises the InvalidDefinition CreateStateMachine
    answers with.

    Sharing is safe because moto's program is immutable once parsed: its components (ported from LocalStack)
    keep what an evaluation changes in the execution's `Environment` (its stack, heap, variables and frames),
    which is also why moto lets the iterations of a Map state evaluate one item processor on several threads at
    once. The one attribute a component sets after its parse is its `heap_key`, drawn on first use as the key
    of its entries in an environment's heap (a retrier's attempt count, a backoff multiplier); two executions
    drawing it at once could each keep a different key. So every key is drawn here, before the program is
    shared. tests/contract checks both facts against moto's source (no component assigns an attribute of its
    own outside its construction but `heap_key`).

    Before this, each execution got its own unpickled copy of the parse (4,000 objects for sagepipe's definition:
    14% of the executions' profile samples in a storm; 86 to 110 ms of the emulator's CPU per redelivery, 76 to
    83 ms without: README, "Trigger storm").

How it differs from AWS
    It does not: this is only about the emulator's speed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Final

from sagepipe.local.core import context
from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "program_cache"
_MAX_DEFINITIONS: Final = 32

_EVAL_COMPONENT: Final = "moto.stepfunctions.parser.asl.component.eval_component:EvalComponent"

MOTO_INTERNALS: Final = (
    Internal(
        "moto.stepfunctions.parser.backend.execution_worker:ExecutionWorker._get_evaluation_entrypoint",
        parameters=("self",),
        why="parses the definition for every execution",
    ),
    Internal(
        "moto.stepfunctions.parser.asl.parse.asl_parser:AmazonStateLanguageParser.parse", parameters=("definition",)
    ),
    Internal(
        "moto.stepfunctions.parser.models:StepFunctionsParserBackend._validate_definition",
        parameters=("definition",),
        why="CreateStateMachine and UpdateStateMachine parse the definition to validate it",
    ),
    Internal(_EVAL_COMPONENT, why="every evaluated component of a parsed program is one"),
    Internal(
        f"{_EVAL_COMPONENT}.heap_key",
        why="drawn on first use; drawn for every component before a program is shared by executions",
    ),
)


@dataclass
class ParsedPrograms:
    """Per definition: the parsed program every execution of it evaluates."""

    programs: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _parse(definition: str) -> Any:
    parse = Internal("moto.stepfunctions.parser.asl.parse.asl_parser:AmazonStateLanguageParser.parse").resolve(ADAPTER)
    return parse(definition)[0]


def components(program: Any) -> list[Any]:
    """Every evaluated component reachable from `program` (itself included), each once."""
    component_type = Internal(_EVAL_COMPONENT).resolve(ADAPTER)
    found: list[Any] = []
    seen: set[int] = set()
    pending = [program]
    while pending:
        item = pending.pop()
        if id(item) in seen or isinstance(item, (str, bytes, int, float, bool, type)) or item is None:
            continue
        seen.add(id(item))
        if isinstance(item, component_type):
            found.append(item)
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            pending.extend(item)
        elif hasattr(item, "__dict__"):
            pending.extend(vars(item).values())
    return found


def shareable(program: Any) -> Any:
    """`program`, with the heap key of every component drawn (see the module docstring); returns it."""
    for component in components(program):
        _ = component.heap_key
    return program


def parsed_program(definition: str) -> Any:
    """The program for `definition`, parsed the first time and then shared by every execution of it."""
    runtime = context.current_or_none()
    if runtime is None:
        return _parse(definition)  # no runtime to keep it in (moto in process): parse, as moto does
    cache = runtime.memo(ParsedPrograms)
    with cache.lock:
        kept = cache.programs.get(definition)
    if kept is not None:
        return kept
    program = shareable(_parse(definition))
    with cache.lock:
        kept = cache.programs.get(definition)  # another thread parsed it meanwhile: one program per definition
        if kept is not None:
            return kept
        if len(cache.programs) >= _MAX_DEFINITIONS:
            cache.programs.pop(next(iter(cache.programs)))
        cache.programs[definition] = program
    return program


def _get_evaluation_entrypoint(self: Any) -> Any:
    return parsed_program(self._evaluation_details.state_machine_details.definition)


def _validate_definition(definition: str) -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    try:
        parsed_program(definition)
    except Exception:  # refused: moto's validation raises the InvalidDefinition it would have raised
        original_attribute(StepFunctionsParserBackend, "_validate_definition")(definition)
        raise


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    replace_attribute(ExecutionWorker, "_get_evaluation_entrypoint", _get_evaluation_entrypoint)
    replace_attribute(StepFunctionsParserBackend, "_validate_definition", staticmethod(_validate_definition))
