"""The one bash process a build's commands run in: driver.sh, the files it reads, and what it reports.

Buildspec 0.2 keeps shell state from command to command, so one bash process runs the whole build: driver.sh, a
static script that `make lint` checks with shellcheck. What is particular to a build is data, never code: the
commands and a plan of phases (`write_plan`). driver.sh reports phase starts and ends and failed commands
through an events file (`read_outcome`), never by parsing the build's output, and the exported variables
through an exports file (`read_exports`).

CodeBuild's rules ("Build phase transitions" and the buildspec reference) as driver.sh applies them: a failed
``install`` or ``pre_build`` ends the build, so none of the later command phases run, not even ``post_build``;
a failed ``build`` still goes on to ``post_build``, which sees CODEBUILD_BUILD_SUCCEEDING=0; ``on-failure:
CONTINUE`` goes on to the next phase whatever failed; ``finally`` runs after its phase's ``commands`` whether
they failed or not, and a failure in either fails the phase; ``exit`` in a command fails that command only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from sagepipe.local.codebuild.buildspec import Buildspec
from sagepipe.local.codebuild.results import FAILED, Phase, phase

SCRIPT: Final = Path(__file__).with_name("driver.sh")

# How many fields follow each event's name.
_EVENT_ARITY: Final = {"PHASE_START": 1, "PHASE_END": 2, "COMMAND_FAILED": 3, "DONE": 0}


def write_plan(spec: Buildspec, runtime: Path) -> None:
    """Write the files driver.sh reads: the commands, and the plan of phases (NUL-terminated words each)."""
    words: list[str] = []
    for spec_phase in spec.phases:
        words += ["PHASE", spec_phase.phase_type, spec_phase.on_failure]
        for note in spec_phase.notes:
            words += ["NOTE", note]
        for command in spec_phase.commands:
            words += ["RUN", str(command.index)]
        words.append("FINALLY")
        for command in spec_phase.finally_commands:
            words += ["RUN", str(command.index)]
        words.append("END")
    for name in spec.exported_variables:
        words += ["EXPORT", name]
    (runtime / "commands").write_bytes(_nul_terminated(command.text for command in spec.commands))
    (runtime / "plan").write_bytes(_nul_terminated(words))


def _nul_terminated(words: Iterable[str]) -> bytes:
    return b"".join(word.encode() + b"\0" for word in words)


@dataclass(frozen=True)
class _Event:
    time: datetime
    kind: str
    args: tuple[str, ...]


def _read_events(path: Path) -> list[_Event]:
    events: list[_Event] = []
    if not path.exists():
        return events
    for line in path.read_text(errors="replace").splitlines():
        stamp, *fields = line.split("\t")
        try:
            # EPOCHREALTIME's decimal point follows the locale, and a command may have changed the locale.
            when = datetime.fromtimestamp(float(stamp.replace(",", ".")), UTC)
        except ValueError:
            continue
        if not fields or _EVENT_ARITY.get(fields[0]) != len(fields) - 1:
            continue  # a line cut short when the build was killed
        events.append(_Event(when, fields[0], tuple(fields[1:])))
    return events


@dataclass
class Outcome:
    """What the driver reported: the phases it completed, the one it was in if it did not finish, and whether it
    reached its end."""

    phases: list[Phase] = field(default_factory=list)
    open_phase: tuple[str, datetime] | None = None
    done: bool = False


def read_outcome(runtime: Path, spec: Buildspec) -> Outcome:
    texts = {command.index: command.text for command in spec.commands}
    outcome = Outcome()
    failure: dict[str, str] | None = None
    for event in _read_events(runtime / "events"):
        if event.kind == "PHASE_START":
            outcome.open_phase, failure = (event.args[0], event.time), None
        elif event.kind == "COMMAND_FAILED" and failure is None:
            text, status = texts.get(int(event.args[1]), "?"), event.args[2]
            failure = {
                "statusCode": "COMMAND_EXECUTION_ERROR",
                "message": f"Error while executing command: {text}. Reason: exit status {status}",
            }
        elif event.kind == "PHASE_END" and outcome.open_phase is not None:
            phase_type, started = outcome.open_phase
            contexts = (failure,) if event.args[1] == FAILED and failure is not None else ()
            outcome.phases.append(phase(phase_type, event.args[1], started, event.time, contexts))
            outcome.open_phase = None
        elif event.kind == "DONE":
            outcome.done = True
    return outcome


def read_exports(runtime: Path) -> dict[str, str]:
    path = runtime / "exports"
    if not path.exists():
        return {}
    fields = path.read_bytes().split(b"\0")
    return {
        fields[i].decode(errors="replace"): fields[i + 1].decode(errors="replace") for i in range(0, len(fields) - 1, 2)
    }
