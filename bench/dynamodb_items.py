"""What the emulator's DynamoDB costs to answer with whole items: a GetItem of a run-record-sized item, and a Scan.

    .venv/bin/python bench/dynamodb_items.py [--items 1000]

Through the emulator's own client (in process), as the functions and the engine's tasks call it. Prints plain
lines (quoted in the README): the median time of a GetItem of a 43-attribute item (the keys, 40 strings and a map of 20
numbers, about the size of a sealed run record), of a GetItem that finds nothing (the request's own cost), and
of a Scan of `--items` 32-attribute items, all pages.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sagepipe.local.core.emulator import Emulator
from sagepipe.local.services import install_all

TABLE = "bench-items"


def _median_ms(call: Callable[[], Any], times: int = 200) -> float:
    call()
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _scan_all(dynamodb: Any) -> int:
    arguments: dict[str, Any] = {"TableName": TABLE}
    count = 0
    for _ in range(10_000):  # pages; bounded
        page = dynamodb.scan(**arguments)
        count += len(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, Emulator(Path(scratch), install=install_all) as emulator:
        dynamodb = emulator.client("dynamodb")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        record: dict[str, Any] = {"pk": {"S": "RUN#record"}, "sk": {"S": "RECORD"}}
        record |= {f"field{index}": {"S": "x" * 40} for index in range(40)}
        record["metrics"] = {"M": {f"metric{index}": {"N": str(index)} for index in range(20)}}
        dynamodb.put_item(TableName=TABLE, Item=record)
        found = {"pk": record["pk"], "sk": record["sk"]}
        missing = {"pk": {"S": "RUN#missing"}, "sk": {"S": "RECORD"}}
        whole = _median_ms(lambda: dynamodb.get_item(TableName=TABLE, Key=found, ConsistentRead=True))
        nothing = _median_ms(lambda: dynamodb.get_item(TableName=TABLE, Key=missing, ConsistentRead=True))
        print(f"GetItem of a {len(record)}-attribute item: {whole:.2f} ms (median of 200)")
        print(f"GetItem that finds nothing: {nothing:.2f} ms (median of 200)")
        for index in range(args.items):
            item = {"pk": {"S": f"RUN#{index}"}, "sk": {"S": "RECORD"}}
            dynamodb.put_item(TableName=TABLE, Item=item | {f"field{n}": {"S": "x" * 40} for n in range(30)})
        started = time.perf_counter()
        count = _scan_all(dynamodb)
        print(f"Scan of {count} items of 32 attributes, all pages: {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
