"""moto objects that tests build directly, bypassing its API: one definition, so that a change to moto's
constructor (which tests/contract would report) is mended in one place."""

from __future__ import annotations

import json
from typing import Any

from moto.events.models import Rule


def moto_rule(targets: list[dict[str, Any]], state: str | None = None) -> Any:
    """An EventBridge rule named on-data matching aws.s3 events, with the given targets."""
    rule_class: Any = Rule  # moto's Rule is abstract for mypy (is_created), concrete at runtime
    return rule_class(
        name="on-data",
        account_id="123456789012",
        region_name="us-east-1",
        description=None,
        event_pattern=json.dumps({"source": ["aws.s3"]}),
        schedule_exp=None,
        role_arn=None,
        event_bus_name="default",
        state=state,
        targets=targets,
    )
