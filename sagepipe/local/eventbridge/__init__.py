"""EventBridge: moto's rules and matcher, with state machine targets that start executions.

AWS
    A rule whose pattern matches an event delivers it to each target (a state machine starts an execution with
    a fresh name), retrying for up to 24 h before the target's dead-letter queue.
Locally
    targets.py starts the execution (and records it in the runtime context, so the runner can follow what an
    upload or a push started) and parks what cannot be delivered in the dead-letter queue; provisioning.py
    creates the rules and their targets.
How it differs
    Delivery is synchronous, with no retries before the dead-letter queue; the target's role is not checked.
"""

from __future__ import annotations


def install() -> None:
    from sagepipe.local.eventbridge import targets

    targets.install()
