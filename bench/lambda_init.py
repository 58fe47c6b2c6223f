"""Lambda cold start: each handler's import time against `import boto3` plus one client, in the same run.

    .venv/bin/python bench/lambda_init.py [--runs 7]

Each measurement is a fresh interpreter (a new execution environment's INIT imports the handler module once),
in the environment Lambda gives the function: LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_NAME, the region, X-Ray's
variables (the template turns Active tracing on), and the template's Globals variables (POWERTOOLS_*). The
clock runs from before the import to after it, so interpreter start-up, the same for every line, is left out.
Measurements alternate between the baseline and the handlers, so that the machine's load falls on all alike.

Prints plain lines (quoted in the README): the baseline (`import boto3` and `boto3.client("s3")`, what any
function that calls AWS pays at least), then each handler's median wall-clock import time and its ratio to the
baseline. The goal is at most 1.5x. Each line also gives the fastest of its runs and that ratio: on a machine
shared with other work, the slower runs mostly measure the others ("the lowest value gives a lower bound for how
fast your machine can run the given code snippet; higher values in the result vector are typically not caused by
variability in Python's speed, but by other processes interfering with your timing accuracy": the Python
documentation of timeit, Timer.repeat: https://docs.python.org/3/library/timeit.html#timeit.Timer.repeat).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from sagepipe.template import PROJECT_ROOT, load_template

RATIO_GOAL = 1.5
BASELINE = "import boto3\nboto3.client('s3')"
PROBE = """
import json, sys, time
code = compile(sys.argv[1], "<measured>", "exec")
wall, cpu = time.perf_counter(), time.process_time()
exec(code, {})
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}))
"""
"""Runs the statement given as its argument in a fresh namespace and prints its wall-clock and CPU seconds."""


@dataclass
class Subject:
    label: str
    statement: str
    environment: dict[str, str]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def measure(self) -> None:
        completed = subprocess.run(
            [sys.executable, "-B", "-c", PROBE, self.statement],
            cwd=PROJECT_ROOT / "functions",
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if completed.returncode != 0:
            raise SystemExit(f"{self.label}: the import failed:\n{completed.stderr[-2000:]}")
        figures = json.loads(completed.stdout.strip().splitlines()[-1])
        self.wall.append(figures["wall"])
        self.cpu.append(figures["cpu"])


def plain_variables(variables: dict[str, Any]) -> dict[str, str]:
    """The variables whose value is a plain string in the template (intrinsic functions need a stack)."""
    return {name: str(value) for name, value in variables.items() if isinstance(value, str | int | float)}


def lambda_environment(name: str, handler: str, variables: dict[str, str]) -> dict[str, str]:
    """What the Lambda runtime sets for a python3.13 function with Active tracing, plus its own variables.
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime"""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(PROJECT_ROOT / "functions"),
        "PYTHONPATH": str(PROJECT_ROOT / "functions"),
        "_HANDLER": handler,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        **variables,
    }


def subjects() -> list[Subject]:
    template = load_template()
    global_variables = plain_variables(
        template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    )
    functions = {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    found = [Subject("baseline", BASELINE, lambda_environment("baseline", "none", global_variables))]
    for logical_id, properties in sorted(functions.items()):
        handler = str(properties["Handler"])
        own = plain_variables(properties.get("Environment", {}).get("Variables", {}))
        module = handler.rpartition(".")[0]
        found.append(
            Subject(logical_id, f"import {module}", lambda_environment(logical_id, handler, global_variables | own))
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per line (default 7)")
    runs = parser.parse_args().runs

    measured = subjects()
    for _ in range(runs):
        for subject in measured:
            subject.measure()
    baseline, handlers = measured[0], measured[1:]
    base = statistics.median(baseline.wall)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"Lambda cold import, median of {runs} fresh interpreters each (load average {load})")
    fastest_base = min(baseline.wall)
    print(
        f"baseline, import boto3 + boto3.client('s3'): {base * 1000:.0f} ms "
        f"(CPU {statistics.median(baseline.cpu) * 1000:.0f} ms; fastest {fastest_base * 1000:.0f} ms)"
    )
    for subject in handlers:
        wall = statistics.median(subject.wall)
        ratio = wall / base
        verdict = "within" if ratio <= RATIO_GOAL else "OVER"
        fastest = min(subject.wall)
        print(
            f"{subject.label} ({subject.statement}): {wall * 1000:.0f} ms "
            f"(CPU {statistics.median(subject.cpu) * 1000:.0f} ms), {ratio:.2f}x the baseline "
            f"({verdict} the {RATIO_GOAL:.1f}x goal); fastest {fastest * 1000:.0f} ms, "
            f"{fastest / fastest_base:.2f}x the fastest baseline"
        )


if __name__ == "__main__":
    main()
