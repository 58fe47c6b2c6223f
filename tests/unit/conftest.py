"""Fixtures shared by the unit tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from moto.server import ThreadedMotoServer


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server of the unit tests' own, for the local build's docker and aws (they reach ECR only).

    moto's backends are process-wide: tests that use it create resources with names of their own and never reset.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://localhost:{port}"
    server.stop()


def create_runs_table(dynamodb: Any, name: str = "runs") -> None:
    """The runs table's keys (pk, sk), on demand, as template.yaml declares it, without its indexes."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
