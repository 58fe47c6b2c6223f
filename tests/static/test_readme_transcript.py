"""The README's transcript of `sagepipe runs` is the one bench/audit_trail_transcript.py writes.

The transcript itself comes from a real local session (minutes: the script, not a test, makes it). This checks
what can be checked without one: the README names the script, has its markers, and its section is exactly what
the script's `render` writes from the (command, output) pairs it holds, for each command the script runs.
"""

import importlib.util
from types import ModuleType

import pytest

from sagepipe.template import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "bench" / "audit_trail_transcript.py"
README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def transcript_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_trail_transcript", SCRIPT)
    assert spec is not None, SCRIPT
    assert spec.loader is not None, SCRIPT
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_names_the_script_that_writes_its_transcript() -> None:
    assert SCRIPT.is_file()
    assert "bench/audit_trail_transcript.py" in README


def test_the_readme_section_is_what_the_script_renders_for_each_runs_command() -> None:
    """Given the README's section between the script's markers, then parsing it and rendering it again gives it
    back unchanged, and it holds list, show, diff and verify, in that order, each with some output."""
    transcript = transcript_module()

    section = transcript.section_of(README)
    pairs = transcript.parse(section)

    assert transcript.render(pairs) == section
    assert [command.split()[:3] for command, _ in pairs] == [
        ["sagepipe", "runs", "list"],
        ["sagepipe", "runs", "show"],
        ["sagepipe", "runs", "diff"],
        ["sagepipe", "runs", "verify"],
    ]
    assert all(output.strip() for _, output in pairs)


def test_render_and_parse_round_trip_and_refuse_another_format() -> None:
    transcript = transcript_module()
    pairs = [("sagepipe runs list", "RUN  STATUS\nabc  SUCCEEDED"), ("sagepipe runs verify abc", "ok")]

    assert transcript.parse(transcript.render(pairs)) == pairs
    with pytest.raises(ValueError, match="markers"):
        transcript.parse("```text\n$ sagepipe runs list\n```")
    with pytest.raises(ValueError, match=r"no .* section"):
        transcript.section_of("# a README without the markers")
