"""The emulator's clients: one per service, shared by every thread, answered by the server's application in process."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sagepipe.local.core.emulator import Emulator

pytestmark = pytest.mark.e2e


def test_every_caller_of_a_service_gets_the_one_client_even_from_many_threads_at_once(emulator: Emulator) -> None:
    # Given a service whose client nobody has asked for yet in this emulator
    service = "service-quotas"

    # When sixteen threads ask for it at once
    with ThreadPoolExecutor(max_workers=16) as pool:
        clients = list(pool.map(lambda _: emulator.client(service), range(16)))

    # Then they all got the same client, which is the one a later caller gets too
    assert len({id(client) for client in clients}) == 1
    assert emulator.client(service) is clients[0]
    assert emulator.client("sts") is not clients[0]


def test_the_emulator_s_clients_are_answered_in_process_and_survive_a_reset(emulator: Emulator) -> None:
    # Given the emulator's SQS client, used before a reset
    sqs = emulator.client("sqs")
    sqs.create_queue(QueueName="before-the-reset")

    # When the emulator is reset and the same client is used again
    emulator.reset()
    bodies: list[object] = []

    def keep_body(http_response: Any, **_: Any) -> None:
        bodies.append(http_response.raw)

    # The client is shared with every later test: the hook comes off again.
    sqs.meta.events.register("after-call.sqs.ListQueues", keep_body)
    try:
        answer = sqs.list_queues()
    finally:
        sqs.meta.events.unregister("after-call.sqs.ListQueues", keep_body)

    # Then the reset emptied the account, and the answer came from the server's application in this process: a
    # body in memory, not a socket's (urllib3's HTTPResponse)
    assert emulator.client("sqs") is sqs
    assert answer.get("QueueUrls", []) == []
    assert len(bodies) == 1
    assert isinstance(bodies[0], io.BytesIO)
