"""Turning plain values into DynamoDB attribute values, so the state machine can write them as they are, and
attribute values read by a function back into plain values, so the state machine gets plain numbers."""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

AttributeValue = dict[str, Any]


def _to_dynamodb_friendly(value: Any) -> Any:
    # DynamoDB numbers are Decimals; floats would be rejected by the serializer.
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {key: _to_dynamodb_friendly(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamodb_friendly(item) for item in value]
    return value


def to_attributes(values: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """Serialise a flat mapping into DynamoDB attribute values, leaving out None (unknown) values."""
    return {
        name: cast(AttributeValue, _serializer.serialize(_to_dynamodb_friendly(value)))
        for name, value in values.items()
        if value is not None
    }


def _to_plain(value: Any) -> Any:
    # Decimals are not JSON: a whole number becomes an int, any other a float (metrics are floats already).
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {key: _to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_to_plain(item) for item in value]
    return value


def from_attributes(attributes: Mapping[str, AttributeValue]) -> dict[str, Any]:
    """Deserialise DynamoDB attribute values (as the low-level client returns them) into plain JSON values."""
    return {name: _to_plain(_deserializer.deserialize(cast(Any, value))) for name, value in attributes.items()}
