"""DynamoDB: moto's DynamoDB, each request atomic as DynamoDB's item writes are.

AWS
    DynamoDB applies each write to an item atomically: a conditional write checks and writes in one step.
Locally
    atomic.py serialises moto's DynamoDB requests, which moto otherwise serves on many threads without a lock;
    attribute_values.py serialises the items of its answers without moto's per-member alias search (speed);
    provisioning.py creates the tables.
How it differs
    Every request is serialised, not only those on one item: only throughput differs.
"""

from __future__ import annotations


def install() -> None:
    from sagepipe.local.dynamodb import atomic, attribute_values

    atomic.install()
    attribute_values.install()
