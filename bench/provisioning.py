"""What each end-to-end test pays before its first event: a reset emulator, and the stack provisioned again.

    .venv/bin/python bench/provisioning.py [--runs 5]

Prints plain lines (quoted in the README): the emulator's start with the first provisioning (imports, the
definition's first parse, the functions' first imports), then each reset and provisioning after it, and their
median. Every end-to-end test starts with `Emulator.reset()` and `provision()` (tests/local/conftest.py).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sagepipe.local.core.emulator import Emulator
from sagepipe.local.provisioner import provision
from sagepipe.local.services import install_all
from sagepipe.template import PROJECT_ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        with Emulator(Path(scratch), install=install_all) as emulator:
            provision(emulator, repository=PROJECT_ROOT)
            print(f"emulator start + first provisioning: {time.perf_counter() - started:.2f} s")
            times: list[float] = []
            for run in range(1, args.runs + 1):
                started = time.perf_counter()
                emulator.reset()
                provision(emulator, repository=PROJECT_ROOT)
                times.append(time.perf_counter() - started)
                print(f"reset + provisioning {run}: {times[-1]:.2f} s")
            print(f"reset + provisioning, median of {args.runs}: {statistics.median(times):.2f} s")


if __name__ == "__main__":
    main()
