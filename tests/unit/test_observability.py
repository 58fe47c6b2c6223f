"""The functions' Tracer traces every AWS SDK call, and imports no other traced library at a cold start.

Run in a fresh interpreter with the environment Lambda gives a function with Active tracing (as
bench/lambda_init.py does): patching is process-wide, and the local runtime turns tracing off in its own process.
"""

import json
import subprocess
import sys

from bench.lambda_init import lambda_environment
from sagepipe.template import PROJECT_ROOT

PROBE = """
import json, sys
import common.observability
from botocore.client import BaseClient
print(json.dumps({
    "botocore_patched": hasattr(BaseClient._make_api_call, "__wrapped__"),
    "imported": sorted(name for name in ("requests", "sqlite3", "httpx", "aiobotocore") if name in sys.modules),
}))
"""


def test_the_tracer_patches_botocore_and_imports_no_other_traced_library() -> None:
    """Given Lambda's environment with tracing on, when the observability module is imported, then botocore's API
    calls are wrapped by the X-Ray SDK, and none of the other libraries it can trace (installed in this venv)
    was imported for it."""
    # Given
    environment = lambda_environment("ObservabilityProbe", "none", {"POWERTOOLS_SERVICE_NAME": "sagepipe"})

    # When
    completed = subprocess.run(
        [sys.executable, "-B", "-c", PROBE],
        cwd=PROJECT_ROOT / "functions",
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Then
    assert completed.returncode == 0, completed.stderr[-2000:]
    found = json.loads(completed.stdout.strip().splitlines()[-1])
    assert found == {"botocore_patched": True, "imported": []}
