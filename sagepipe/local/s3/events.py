"""S3 -> EventBridge events in the shape AWS documents.

The gap
    moto's S3 emits EventBridge events when a bucket's EventBridgeConfiguration is on, but not in AWS's
    shape: `reason` is "ObjectCreated" instead of PutObject / CompleteMultipartUpload / CopyObject, the key is
    not URL-encoded, `time` is a number instead of an ISO 8601 string, the etag field is `eTag`, `id` is
    missing, a plain PutObject also emits a spurious "Object Tags Added", and CompleteMultipartUpload emits a
    spurious PutObject "Object Created" before its own. Delivery errors are swallowed.

What this adapter does
    Replaces `moto.s3.notifications._send_event_bridge_message` with one that builds the documented event
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html) and delivers it to the rules of the
    default event bus, like S3 does. A failed delivery is logged, not swallowed.

How it differs from AWS
    Delivery happens during the S3 request (AWS delivers asynchronously, within seconds). `requester` is the
    emulator's account and `source-ip-address` is 127.0.0.1.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote_plus

from sagepipe.local.core import context
from sagepipe.local.core.moto_internals import Internal, check_all, replace_attribute

ADAPTER = "s3_events"

MOTO_INTERNALS: Final = (
    Internal(
        "moto.s3.notifications:_send_event_bridge_message",
        parameters=("account_id", "bucket", "event_name", "key"),
        why="S3 calls it (by module global) for every event of a bucket with EventBridge notifications on.",
    ),
    Internal("moto.s3.notifications:send_event", parameters=("account_id", "event_name", "bucket", "key")),
    Internal("moto.s3.notifications:_detail_type", parameters=("event_name",)),
    Internal("moto.events.models:events_backends", why="the default bus whose rules receive S3's events"),
)

REASONS: Final = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
    "s3:ObjectRemoved:Delete": "DeleteObject",
    "s3:ObjectRemoved:DeleteMarkerCreated": "DeleteObject",
}

log = logging.getLogger(__name__)


def _microseconds_now() -> Iterator[int]:
    return itertools.count(int(datetime.now(UTC).timestamp() * 1_000_000))


@dataclass
class Sequencer:
    """S3's sequencer orders events for one key: a hex string that grows with every event. Counting from the
    clock keeps it growing across runtimes and resets."""

    counter: Iterator[int] = field(default_factory=_microseconds_now)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self) -> str:
        with self.lock:
            return f"{next(self.counter):018X}"


def _next_sequencer() -> str:
    runtime = context.current_or_none()
    return (runtime.state(Sequencer) if runtime is not None else Sequencer()).next()


def encode_key(key: str) -> str:
    """S3 URL-encodes keys in event notifications: form encoding, '+' for a space, '/' kept."""
    return quote_plus(key, safe="/")


def object_tags(account_id: str, key: Any) -> dict[str, str]:
    backends = Internal("moto.s3.models:s3_backends").resolve(ADAPTER)
    tagger = backends[account_id]["aws"].tagger
    tags: dict[str, str] = tagger.get_tag_dict_for_resource(key.arn)
    return tags


def build_event(account_id: str, region: str, bucket_name: str, event_name: Any, key: Any) -> dict[str, Any] | None:
    """The EventBridge event S3 sends for this notification, or None for an event AWS would not send."""
    detail_type = Internal("moto.s3.notifications:_detail_type").resolve(ADAPTER)(event_name)
    # moto passes an S3NotificationEvent enum member; its value is the notification name (s3:ObjectCreated:Put).
    event_name = str(getattr(event_name, "value", event_name))
    is_delete_marker = bool(getattr(key, "is_delete_marker", False)) or type(key).__name__ == "FakeDeleteMarker"
    if detail_type == "Object Tags Added" and not object_tags(account_id, key):
        # moto's PutObject also runs its tagging path with no tags; AWS sends no event for that.
        return None
    if event_name == "s3:ObjectCreated:Put" and getattr(key, "multipart", None) is not None:
        # moto's CompleteMultipartUpload stores the object through its PutObject path, which notifies too;
        # AWS sends only the CompleteMultipartUpload event, which moto sends next.
        return None
    detail: dict[str, Any] = {
        "version": "0",
        "bucket": {"name": bucket_name},
        "object": {"key": encode_key(key.name)},
        "request-id": uuid.uuid4().hex[:16].upper(),
        "requester": account_id,
        "source-ip-address": "127.0.0.1",
    }
    if not is_delete_marker:
        detail["object"]["size"] = int(getattr(key, "size", 0) or 0)
        etag = str(getattr(key, "etag", "") or "").strip('"')
        if etag:
            detail["object"]["etag"] = etag
    version_id = getattr(key, "version_id", None)
    if version_id and version_id != "null":
        detail["object"]["version-id"] = version_id
    detail["object"]["sequencer"] = _next_sequencer()
    if event_name in REASONS:
        detail["reason"] = REASONS[event_name]
    if detail_type == "Object Deleted":
        detail["deletion-type"] = "Delete Marker Created" if is_delete_marker else "Permanently Deleted"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket_name}"],
        "detail": detail,
    }


def _send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
    try:
        event = build_event(account_id, bucket.region_name, bucket.name, event_name, key)
        if event is None:
            return
        backends = Internal("moto.events.models:events_backends").resolve(ADAPTER)
        default_bus = backends[account_id][bucket.region_name].event_buses.get("default")
        if default_bus is None:
            return
        for rule in list(default_bus.rules.values()):
            rule.send_to_targets(event)
    except Exception:
        # S3 delivers to EventBridge asynchronously: a failure never fails the S3 request. It is logged.
        log.exception("S3 -> EventBridge delivery failed for s3://%s/%s (%s)", bucket.name, key.name, event_name)


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    from moto.s3 import notifications

    replace_attribute(notifications, "_send_event_bridge_message", _send_event_bridge_message)
