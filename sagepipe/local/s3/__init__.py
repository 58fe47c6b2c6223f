"""S3: moto's S3, with the events, the bucket policies and the copy limit AWS has.

AWS
    S3 sends an EventBridge event per object change in a documented shape, evaluates bucket policies with
    their Conditions (aws:SecureTransport), and refuses a CopyObject of a source over 5 GiB.
Locally
    events.py builds AWS's event shape and delivers it to the default bus's rules; bucket_policy.py evaluates
    Conditions as IAM does, with the request context of a TLS request; copy_limit.py refuses a CopyObject over
    the runtime's limit (AWS's 5 GiB; tests lower it). provisioning.py creates the buckets and their policies.
How it differs
    Events are delivered during the request (AWS: asynchronously, within seconds); conditions on keys other
    than aws:SecureTransport never match; the part limits of a multipart copy are not enforced.
"""

from __future__ import annotations


def install() -> None:
    from sagepipe.local.s3 import bucket_policy, copy_limit, events

    for adapter in (bucket_policy, copy_limit, events):
        adapter.install()
