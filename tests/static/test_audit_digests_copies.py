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


def test_the_pipeline_and_the_cli_read_model_packages_the_same_way() -> None:
    """Given the functions' copy of the model registry conventions (EvaluateGate, RecordModelDecision) and the
    CLI's (`sagepipe models`), then they are byte for byte the same file: what one writes, the other reads."""
    functions_copy = PROJECT_ROOT / "functions" / "common" / "model_registry.py"
    cli_copy = PROJECT_ROOT / "sagepipe" / "models" / "model_registry.py"
    assert functions_copy.read_bytes() == cli_copy.read_bytes(), (
        f"{cli_copy.relative_to(PROJECT_ROOT)} differs from {functions_copy.relative_to(PROJECT_ROOT)}: "
        "edit one, then copy it over the other"
    )
