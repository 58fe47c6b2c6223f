"""Turning plain values into DynamoDB attribute values, so the state machine can write them as they are."""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

from boto3.dynamodb.types import TypeSerializer

_serializer = TypeSerializer()

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
