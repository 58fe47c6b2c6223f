"""The README's transcript of `sagepipe runs`, from a real local session.

    .venv/bin/python bench/audit_trail_transcript.py [--check]

Starts `sagepipe local up` in a temporary directory, makes two runs against it with `sagepipe local run` (the
default data, then the same data without its first 50 rows, so that the second run has another data version
and other metrics), then runs `sagepipe runs list`, `runs show`, `runs diff` and `runs verify` against its
endpoint, as a user would after exporting the variables `local up` prints. Their output replaces the README's
section between TRANSCRIPT_BEGIN and TRANSCRIPT_END, one fenced block a command (`render`). With --check it
only says whether the README's section is in the format this script writes (tests/static checks the same).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Final

from sagepipe.local import session
from sagepipe.local.core.emulator import client_environment
from sagepipe.local.sample_data import write_breast_cancer_csv
from sagepipe.template import PROJECT_ROOT

README: Final = PROJECT_ROOT / "README.md"
TRANSCRIPT_BEGIN: Final = "<!-- transcript: begin (written by bench/audit_trail_transcript.py; do not edit) -->"
TRANSCRIPT_END: Final = "<!-- transcript: end -->"
COMMAND_TIMEOUT_SECONDS: Final = 600.0
FENCE: Final = "```"
PROMPT: Final = "$ "


def render(transcript: list[tuple[str, str]]) -> str:
    """The README section for (command line, output) pairs: the markers around one fenced block a command."""
    blocks = [f"{FENCE}text\n{PROMPT}{command}\n{output.rstrip()}\n{FENCE}" for command, output in transcript]
    return "\n".join([TRANSCRIPT_BEGIN, *blocks, TRANSCRIPT_END])


def parse(section: str) -> list[tuple[str, str]]:
    """The (command line, output) pairs of a section `render` wrote; ValueError if it is not in that format."""
    lines = section.strip("\n").split("\n")
    if not lines or lines[0] != TRANSCRIPT_BEGIN or lines[-1] != TRANSCRIPT_END:
        raise ValueError("the section does not begin and end with the transcript markers")
    pairs: list[tuple[str, str]] = []
    body = lines[1:-1]
    index = 0
    while index < len(body):
        if body[index] != f"{FENCE}text" or index + 1 >= len(body) or not body[index + 1].startswith(PROMPT):
            raise ValueError(f"line {index + 2} of the section: expected a ```text block opening with '$ '")
        end = body.index(FENCE, index + 2)
        pairs.append((body[index + 1].removeprefix(PROMPT), "\n".join(body[index + 2 : end])))
        index = end + 1
    return pairs


def section_of(readme: str) -> str:
    """The README's transcript section, markers included; ValueError when the markers are missing."""
    start, end = readme.find(TRANSCRIPT_BEGIN), readme.find(TRANSCRIPT_END)
    if start < 0 or end < start:
        raise ValueError(f"README.md has no '{TRANSCRIPT_BEGIN}' ... '{TRANSCRIPT_END}' section")
    return readme[start : end + len(TRANSCRIPT_END)]


def replace_section(readme: str, section: str) -> str:
    old = section_of(readme)
    return readme.replace(old, section, 1)


def _environment() -> dict[str, str]:
    kept = {name: value for name, value in os.environ.items() if not name.startswith(("MOTO_", "AWS_", "GIT_"))}
    return kept | {"PYTHONIOENCODING": "utf-8", "NO_COLOR": "1", "COLUMNS": "120"}


def _sagepipe() -> str:
    return str(Path(sys.executable).with_name("sagepipe"))


def _run(work: Path, arguments: list[str], environment: dict[str, str]) -> str:
    completed = subprocess.run(
        [_sagepipe(), *arguments],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    # verify and diff may exit non-zero by design; the transcript shows what they print either way.
    if completed.returncode not in {0, 3, 4}:
        raise SystemExit(f"sagepipe {' '.join(arguments)} exited {completed.returncode}:\n{completed.stderr}")
    return completed.stdout


def _local_run(work: Path, data: Path, environment: dict[str, str]) -> str:
    import json

    record = json.loads(_run(work, ["local", "run", "--json", "--data", str(data)], environment))
    return str(record["run_id"])


def record_transcript(work: Path) -> list[tuple[str, str]]:
    """Two local runs against one `local up`, then each `sagepipe runs` command: (command line, output) pairs."""
    environment = _environment()
    first_data = write_breast_cancer_csv(work / "data" / "breast-cancer.csv")
    header, *rows = first_data.read_text(encoding="utf-8").splitlines()
    second_data = work / "data" / "breast-cancer-fewer-rows.csv"
    second_data.write_text("\n".join([header, *rows[50:]]) + "\n", encoding="utf-8")
    up = session.spawn(
        [_sagepipe(), "local", "up", "--port", "0"], state_dir=work / ".sagepipe", cwd=work, env=environment
    )
    try:
        first = _local_run(work, first_data, environment)
        second = _local_run(work, second_data, environment)
        against_up = environment | client_environment(up.up.endpoint)
        commands = [
            ["runs", "list"],
            ["runs", "show", second],
            ["runs", "diff", first, second],
            ["runs", "verify", second],
        ]
        return [(f"sagepipe {' '.join(command)}", _run(work, command, against_up)) for command in commands]
    finally:
        up.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the README's section's format")
    arguments = parser.parse_args()
    readme = README.read_text(encoding="utf-8")
    if arguments.check:
        section = section_of(readme)
        print(f"README.md: {len(parse(section))} command(s) in the transcript section")
        return
    with tempfile.TemporaryDirectory(prefix="sagepipe-transcript-") as scratch:
        transcript = record_transcript(Path(scratch))
    README.write_text(replace_section(readme, render(transcript)), encoding="utf-8")
    print(f"README.md: transcript of {len(transcript)} command(s) written")


if __name__ == "__main__":
    main()
