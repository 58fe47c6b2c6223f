"""The emulator's process spends less of its one core on the cyclic garbage collector.

The gap
    Everything the local runtime serves (moto's server and backends, the Step Functions engine's executions, the
    in-process functions) runs as threads of one Python process, which runs Python on one core at a time. Under a
    storm of 1,000 deliveries the executions allocate millions of objects, and with Python's default thresholds
    (2,000, 10, 10) the collector ran 397 young, 36 middle and 3 full collections in a 300-delivery storm: 7.2 s of
    its 46 s of CPU (bench/trigger_storm.py, 2026-12-01), each collection stopping every thread. Most of what a full
    collection walks is alive for the whole session: moto's backends and response models, botocore's service
    models, the functions' modules, the parsed state machine.

What this module does
    `tune()` (when the emulator starts) raises the thresholds, so that young collections come every 50,000
    allocations instead of 2,000, and older ones less often. `freeze_long_lived()` (after the stack is first
    provisioned in this runtime) moves every object alive then into the collector's permanent generation
    (`gc.freeze`), which no collection walks again. Together: 30 young collections, 1 middle, 2.4-3.5 s in the
    same storm (the storm's wall time on the shared machine varied more than that between runs). Objects are
    still freed by reference counting as before; only cycles among frozen objects would stay.
    Python documentation, gc.set_threshold and gc.freeze: https://docs.python.org/3/library/gc.html

How it differs from AWS
    It does not: this is only about the emulator's speed.
"""

from __future__ import annotations

import gc
import threading
from dataclasses import dataclass, field
from typing import Final

from sagepipe.local.core import context

THRESHOLDS: Final = (50_000, 20, 100)
"""Allocations before a young collection; young collections before a middle one; middle ones before a full one."""


def tune() -> None:
    """Collect less often in this process (see the module docstring)."""
    gc.set_threshold(*THRESHOLDS)


@dataclass
class FrozenHeap:
    """Whether this runtime froze its long-lived objects already (a memo: it outlives resets)."""

    done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def freeze_long_lived(runtime: context.RuntimeContext) -> None:
    """Once per runtime: move every object alive now out of the collector's generations (see the module docstring).
    Later provisionings do not freeze again: what they add is mostly the stack a reset forgets."""
    memo = runtime.memo(FrozenHeap)
    with memo.lock:
        if memo.done:
            return
        memo.done = True
    gc.freeze()
