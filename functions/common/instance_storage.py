"""Which SageMaker training instance types have local (instance store) storage.

Why it matters: SageMaker refuses `ResourceConfig.VolumeKmsKeyId` for an instance type with local storage,
with a ValidationException ("You can't request a VolumeKmsKeyId when using an instance type with local
storage"). Local NVMe volumes are encrypted by a hardware module on the instance instead. Source: the
`ResourceConfig.VolumeKmsKeyId` documentation in botocore's SageMaker service model
(botocore/data/sagemaker/2017-07-24/service-2.json), and the `VolumeSizeInGB` documentation next to it
("ML instance families with the NVMe-type instance storage include ml.p4d, ml.g4dn, and ml.g5").

Which families have instance storage is EC2's `InstanceStorageSupported` (DescribeInstanceTypes). The
table below was read from it for every training instance type botocore lists; `sagepipe doctor` checks the
configured type against the live DescribeInstanceTypes answer, and tests/static/test_instance_storage.py
checks this table against the EC2 catalogue that moto ships (a snapshot of DescribeInstanceTypes).

This module has no dependencies: the NormaliseTrigger function and the `sagepipe` CLI both use it.
"""

from __future__ import annotations

import re

LOCAL_STORAGE_FAMILIES = frozenset(
    {
        # General purpose, compute and memory optimised with the "d" (instance store) attribute.
        "m5d",
        "c5d",
        "r5d",
        # Accelerated computing: every current GPU and Trainium family SageMaker trains on has NVMe storage.
        "g4dn",
        "g5",
        "g6",
        "g6e",
        "g7",
        "g7e",
        "p3dn",
        "p4d",
        "p4de",
        "p5",
        "p5e",
        "p5en",
        "p6-b200",
        "p6-b300",
        "p6e-gb200",
        "trn1",
        "trn1n",
        "trn2",
    }
)
"""Training instance families (the part between `ml.` and the size) with instance store volumes."""

_FAMILY = re.compile(r"^ml\.(?P<family>[a-z0-9]+(-[a-z0-9]+)?)\.[a-z0-9]+$")
_ATTRIBUTES = re.compile(r"^[a-z]+[0-9]+(?P<attributes>[a-z]*)")


def instance_family(instance_type: str) -> str:
    """`ml.g5.xlarge` -> `g5`. Raises ValueError for anything that is not an `ml.<family>.<size>` type."""
    match = _FAMILY.match(instance_type)
    if match is None:
        raise ValueError(f"{instance_type!r} is not a SageMaker instance type (ml.<family>.<size>)")
    return match["family"]


def has_local_storage(instance_type: str) -> bool:
    """Whether the instance type has instance store volumes, so that VolumeKmsKeyId must not be sent.

    A family missing from the table follows EC2's naming convention: the `d` attribute after the
    generation number (m6id, c7gd, ...) means instance store volumes.
    """
    family = instance_family(instance_type)
    if family in LOCAL_STORAGE_FAMILIES:
        return True
    attributes = _ATTRIBUTES.match(family.split("-", 1)[0])
    return attributes is not None and "d" in attributes["attributes"]
