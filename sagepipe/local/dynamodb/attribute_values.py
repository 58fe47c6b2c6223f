"""DynamoDB items are serialised attribute value by attribute value without moto's alias search.

The gap
    moto answers DynamoDB with its generic response serialiser, which walks the output shape and fills every
    member of every structure through its attribute picker: for each of the ten members of an `AttributeValue`
    (S, N, B, SS, NS, BS, M, L, NULL, BOOL) it tries the key, its snake_case form and four kinds of alias on the
    value, whether or not the value has that member. A GetItem of a 60-attribute run record cost 11 ms of CPU,
    against 2 ms for a missing item; a scan of a storm's runs table, seconds.

What this adapter does
    For an `AttributeValue` of DynamoDB (or DynamoDB Streams) whose value is a plain dict holding only member names
    (what moto's `dynamo_to_dict` makes of its items), it serialises the members the dict holds, in the shape's
    order, through the same per-type serialisers; anything else goes to moto's own path. No alias of a member
    can be one of those names, so the picker would have found exactly these values: the answer is the same
    (a contract test compares the two, byte for byte).

How it differs from AWS
    It does not: only the emulator's speed changes.
"""

from __future__ import annotations

from typing import Any, Final

from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "dynamodb_attribute_values"

_SERIALIZE_MODULE: Final = "moto.core.serialize"

SERVICES: Final = frozenset({"dynamodb", "dynamodbstreams"})
"""The services whose `AttributeValue` is DynamoDB's (botocore's dynamodb and dynamodbstreams models)."""

MOTO_INTERNALS: Final = (
    Internal(
        f"{_SERIALIZE_MODULE}:BaseJSONSerializer._serialize_type_structure",
        parameters=("self", "serialized", "value", "shape", "key"),
        why="serialises every structure of a JSON-protocol answer, AttributeValue included",
    ),
    Internal(
        f"{_SERIALIZE_MODULE}:ResponseSerializer._serialize",
        parameters=("self", "serialized", "value", "shape", "key"),
        why="serialises one member through its type's serialiser, as moto's structure path does",
    ),
    Internal(
        f"{_SERIALIZE_MODULE}:ResponseSerializer._default_serialize",
        parameters=("self", "serialized", "value", "shape", "key"),
        why="puts the finished structure under its key, as moto's structure path does",
    ),
)


def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
    if (
        shape.name != "AttributeValue"
        or type(value) is not dict
        or not value.keys() <= shape.members.keys()
        or self.service_model.service_name not in SERVICES
    ):
        original_attribute(_serializer_class(), "_serialize_type_structure")(self, serialized, value, shape, key)
        return
    wrapper = self.MAP_TYPE() if key else serialized
    for member_key, member_shape in shape.members.items():
        member_shape.parent = shape  # as moto's path leaves it (its ShapePrefixAlias reads it)
        member_value = value.get(member_key)
        if member_value is not None:
            self._serialize(wrapper, member_value, member_shape, member_key)
    if key:
        self._default_serialize(serialized, wrapper, shape, key)


def _serializer_class() -> Any:
    from moto.core.serialize import BaseJSONSerializer

    return BaseJSONSerializer


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    replace_attribute(_serializer_class(), "_serialize_type_structure", _serialize_type_structure)
