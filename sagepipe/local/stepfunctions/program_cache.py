"""Each execution gets its own copy of a program parsed once per definition.

The gap
    moto's Step Functions engine parses the definition with ANTLR for every execution, in
    `ExecutionWorker._get_evaluation_entrypoint`: about 0.1-0.2 s of CPU for sagepipe's 25-state definition.
    A storm of 1,000 deliveries spends minutes parsing the same text, and every run pays it before its first
    state. `CreateStateMachine` parses it once more to validate it (`_validate_definition`), and so does every
    provisioning of the stack.

What this adapter does
    Parses each definition once, keeps it pickled in the runtime context's memo (a parse depends on the text
    only, so it outlives `Emulator.reset()`: a test that provisions the stack again does not parse again, as the
    provisioner gives the pipeline key, whose ARN the definition holds, the same id in a reset emulator), and
    hands every execution its own unpickled copy (a few ms, against 30 ms or more for copy.deepcopy), so
    executions share no evaluation components, exactly as if each had parsed its own. A program that cannot be
    pickled is deep-copied instead. Validation uses the same parse; a definition the parser refuses is handed to
    moto's own validation, which raises the InvalidDefinition CreateStateMachine answers with.

How it differs from AWS
    It does not: this is only about the emulator's speed.
"""

from __future__ import annotations

import copy
import pickle
import threading
from dataclasses import dataclass, field
from typing import Any, Final

from sagepipe.local.core import context
from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "program_cache"
_MAX_DEFINITIONS: Final = 32

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
)


@dataclass
class ParsedPrograms:
    """Per definition: the parsed program pickled, or the program itself when it cannot be pickled."""

    programs: dict[str, bytes | Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _parse(definition: str) -> Any:
    parse = Internal("moto.stepfunctions.parser.asl.parse.asl_parser:AmazonStateLanguageParser.parse").resolve(ADAPTER)
    return parse(definition)[0]


def parsed_program(definition: str) -> Any:
    """A fresh copy of the program for `definition`, parsing it only the first time."""
    runtime = context.current_or_none()
    if runtime is None:
        return _parse(definition)  # no runtime to keep it in (moto in process): parse, as moto does
    cache = runtime.memo(ParsedPrograms)
    with cache.lock:
        kept = cache.programs.get(definition)
    if kept is None:
        program = _parse(definition)
        try:
            kept = pickle.dumps(program, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            kept = program
        with cache.lock:
            if len(cache.programs) >= _MAX_DEFINITIONS:
                cache.programs.pop(next(iter(cache.programs)))
            cache.programs[definition] = kept
    # The bytes are our own pickle of moto's parse of the definition, never outside input.
    return pickle.loads(kept) if isinstance(kept, bytes) else copy.deepcopy(kept)  # noqa: S301


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
