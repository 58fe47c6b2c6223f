"""The content digest and the canonical JSON are defined once, in a file that exists twice (see its docstring)."""

from sagepipe.template import PROJECT_ROOT

FUNCTIONS_COPY = PROJECT_ROOT / "functions" / "common" / "audit_digests.py"
CLI_COPY = PROJECT_ROOT / "sagepipe" / "runs" / "audit_digests.py"


def test_the_pipeline_and_the_cli_compute_the_same_digests() -> None:
    """Given the functions' copy (DigestArtifact, SealRecord) and the CLI's copy (`sagepipe runs verify`), then
    they are byte for byte the same file: a record sealed by one verifies with the other."""
    assert FUNCTIONS_COPY.read_bytes() == CLI_COPY.read_bytes(), (
        f"{CLI_COPY.relative_to(PROJECT_ROOT)} differs from {FUNCTIONS_COPY.relative_to(PROJECT_ROOT)}: "
        "edit one, then copy it over the other"
    )
