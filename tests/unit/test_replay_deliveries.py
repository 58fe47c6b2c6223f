"""Reading a recorded GitHub webhook delivery for `sagepipe local replay` (sagepipe.local.replay.read_delivery).

GitHub signs the exact bytes it sends, and shows them on the webhook's "Recent Deliveries" page as a header block
(`Name: value` lines, after "Request method: POST") and the payload as text. A delivery file may hold the body as
that text or as a JSON object, the headers as an object or as those lines, or be the REST API's delivery
(`GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}`: `request.headers`, `request.payload`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sagepipe.local.replay import ReplayInputError, is_delivery, read_delivery
from sagepipe.template import PROJECT_ROOT

SAMPLE: dict[str, Any] = json.loads((PROJECT_ROOT / "events" / "github-push.json").read_text(encoding="utf-8"))
RAW_BODY = '{\n  "ref": "refs/heads/main",\n  "zen": "Keep it logically awesome.",\n  "hook_id": 1\n}'

RECENT_DELIVERIES_HEADERS = """Request method: POST
Accept: */*
Content-Type: application/json
User-Agent: GitHub-Hookshot/a1b2c3d
X-GitHub-Delivery: 0b989ba4-242f-11e5-81e1-c7b6966d2516
X-GitHub-Event: push
X-GitHub-Hook-ID: 512345678
X-Hub-Signature: sha1=7d38cdd689735b008b3c702edd92eea23791c5f6
X-Hub-Signature-256: sha256=d57c68ca6f92289e6987922ff26938930f6e66a2d161ef06abdf1859230aa23c
Content-Length: 63
"""


def test_a_raw_text_body_is_sent_byte_for_byte() -> None:
    """Given the body as the raw JSON text GitHub sent (indentation and key order included), then the bytes sent
    are exactly that text's UTF-8, not a re-serialisation (the signature is over the bytes)."""
    delivery = read_delivery({"headers": {"X-GitHub-Event": "ping"}, "body": RAW_BODY})

    assert delivery.body == RAW_BODY.encode("utf-8")
    assert delivery.event_name == "ping"


def test_an_object_body_is_serialised_once() -> None:
    delivery = read_delivery({"headers": SAMPLE["headers"], "body": SAMPLE["body"]})

    assert json.loads(delivery.body) == SAMPLE["body"]
    assert delivery.event_name == "push"


def test_headers_copied_from_recent_deliveries_are_read_and_stale_ones_dropped() -> None:
    """Given the header block as GitHub's Recent Deliveries page shows it, then each `Name: value` line is a header
    (the "Request method" line is not), and the length and GitHub's signatures are not forwarded: the replay is
    a new request, signed with the local secret."""
    delivery = read_delivery({"headers": RECENT_DELIVERIES_HEADERS, "body": RAW_BODY})

    assert delivery.headers == {
        "Accept": "*/*",
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/a1b2c3d",
        "X-GitHub-Delivery": "0b989ba4-242f-11e5-81e1-c7b6966d2516",
        "X-GitHub-Event": "push",
        "X-GitHub-Hook-ID": "512345678",
    }
    assert delivery.dropped == ("X-Hub-Signature", "X-Hub-Signature-256", "Content-Length")
    assert delivery.header("x-github-delivery") == "0b989ba4-242f-11e5-81e1-c7b6966d2516"


def test_the_rest_api_s_delivery_is_a_delivery_too() -> None:
    recorded = {"id": 1, "guid": "x", "request": {"headers": SAMPLE["headers"], "payload": SAMPLE["body"]}}

    delivery = read_delivery(recorded)

    assert is_delivery(recorded)
    assert json.loads(delivery.body) == SAMPLE["body"]
    assert delivery.event_name == "push"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"headers": {}, "body": ""}, True),
        ({"request": {"headers": {}, "payload": {}}}, True),
        ({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}, False),
        ({"headers": {}}, False),
    ],
)
def test_what_counts_as_a_delivery(event: dict[str, Any], expected: bool) -> None:
    assert is_delivery(event) is expected


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ("X-GitHub-Event push", "'X-GitHub-Event push' is not 'Name: value'"),
        (["X-GitHub-Event: push"], "neither an object nor 'Name: value' lines"),
    ],
)
def test_headers_that_cannot_be_read_are_bad_input(headers: Any, message: str) -> None:
    with pytest.raises(ReplayInputError, match=message):
        read_delivery({"headers": headers, "body": RAW_BODY})
