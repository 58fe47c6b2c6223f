"""The emulator's process collects less often, and keeps its long-lived objects out of the collector's walks."""

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from sagepipe.local.core import collector, context


@pytest.fixture
def runtime(tmp_path: Path) -> context.RuntimeContext:
    return context.RuntimeContext(state_dir=tmp_path, endpoint="http://localhost:0", client_factory=lambda _: None)


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


@pytest.mark.usefixtures("restored_collector")
def test_the_first_provisioning_freezes_what_is_alive_and_later_ones_do_not(runtime: context.RuntimeContext) -> None:
    """Given a runtime, when its stack is provisioned the first time, then every object alive is frozen; when it is
    provisioned again after new objects were made, then they are not (a reset's stack is not kept forever)."""
    gc.unfreeze()

    # When: the first provisioning
    collector.freeze_long_lived(runtime)
    frozen = gc.get_freeze_count()

    # Then
    assert frozen > 0

    # When: new objects, then another provisioning in the same runtime (after a reset, say)
    made_later = [[index] for index in range(1000)]
    runtime.reset()
    collector.freeze_long_lived(runtime)

    # Then: the new objects stay in the collector's generations
    assert gc.get_freeze_count() == frozen
    assert len(made_later) == 1000


@pytest.mark.usefixtures("restored_collector")
def test_tune_sets_the_emulator_thresholds() -> None:
    """Given Python's default thresholds, when the emulator tunes the collector, then young collections come every
    50,000 allocations and older ones less often."""
    gc.set_threshold(2000, 10, 10)

    collector.tune()

    assert gc.get_threshold() == collector.THRESHOLDS == (50_000, 20, 100)
