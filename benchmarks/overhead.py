"""Client-side overhead of an add against raw botocore sending the very same request.

HTTP is short-circuited at botocore's ``before-send`` event with a canned 200 answer, so only
client CPU counts: request building, serialisation, signing, parsing -- botocore's and ours.
For each single-request strategy the library's add is timed against the raw client method
called with the exact parameters the library sent (recorded by an ``on_call`` listener).
Time is this thread's CPU time (``time.thread_time``), so other processes on a shared machine
count little; within a round raw and library batches of ``BATCH`` adds alternate (short
batches, so that a burst of noise from a neighbour falls on both sides alike), and the ratio of
their totals is taken per round; the median and spread over rounds are reported.

    .venv/bin/python benchmarks/overhead.py              # sync and async (if aiobotocore)
    .venv/bin/python benchmarks/overhead.py --adds 500 --rounds 3

Target (issue 11): every ratio at most 1.10.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse, HTTPHeaders

from dynamodb_counters import CallRecord, CounterStore

STRATEGIES = ("atomic", "transaction", "marker", "set", "collection")
_METHODS = {"UpdateItem": "update_item", "TransactWriteItems": "transact_write_items"}
#: Adds per batch; raw and library batches alternate.
BATCH = 20


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data

    def read(self, *_: Any) -> bytes:
        return self._data


def _canned(operation: str) -> bytes:
    if operation == "UpdateItem":
        return json.dumps({"Attributes": {"quantity": {"N": "7"}, "_ids": {"SS": ["a"]}}}).encode()
    return b"{}"


def _short_circuit(request: Any, **_: Any) -> AWSResponse:
    target = str(request.headers.get("X-Amz-Target", b""))
    operation = target.rsplit(".", 1)[-1].strip("'")
    body = _canned(operation)
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/x-amz-json-1.0"
    headers["x-amzn-RequestId"] = "canned"
    headers["Content-Length"] = str(len(body))
    return AWSResponse(request.url, 200, headers, _Body(body))


def sync_client() -> Any:
    client: Any = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    client.meta.events.register("before-send.dynamodb", _short_circuit)
    return client


def _counter(store: Any, strategy: str) -> Any:
    return store.counter(f"bench-{strategy}", strategy=strategy)


def _recorded(strategy: str) -> tuple[str, dict[str, Any]]:
    """The request the library sends for one add (after create), as the raw client gets it."""
    seen: list[CallRecord] = []
    store = CounterStore(sync_client(), "counters", on_call=seen.append)
    counter = _counter(store, strategy)
    counter.create()
    seen.clear()
    counter.add(1)
    (record,) = seen
    return record.operation, dict(record.params)


def _time(run: Callable[[], None], adds: int) -> float:
    started = time.thread_time()
    for _ in range(adds):
        run()
    return time.thread_time() - started


def _round(raw: Callable[[], None], library: Callable[[], None], adds: int) -> float:
    base = ours = 0.0
    for _ in range(max(1, adds // BATCH)):
        base += _time(raw, BATCH)
        ours += _time(library, BATCH)
    return ours / base


def measure_sync(strategy: str, adds: int, rounds: int) -> list[float]:
    operation, params = _recorded(strategy)
    raw_client = sync_client()
    method = getattr(raw_client, _METHODS[operation])
    store = CounterStore(sync_client(), "counters")
    counter = _counter(store, strategy)
    counter.create()
    idempotent = strategy != "atomic"
    if idempotent:

        def library() -> None:
            counter.add(1, request_id="r")
    else:

        def library() -> None:
            counter.add(1)

    def raw() -> None:
        method(**params)

    for warm in (raw, library):
        _time(warm, 50)
    return [_round(raw, library, adds) for _ in range(rounds)]


async def measure_async(strategy: str, adds: int, rounds: int) -> list[float]:
    from aiobotocore.session import get_session

    from dynamodb_counters._aio_hooks import before_send_handler
    from dynamodb_counters.aio import AsyncCounterStore

    operation, params = _recorded(strategy)
    session = get_session()
    kwargs: dict[str, Any] = {
        "region_name": "us-east-1",
        "endpoint_url": "http://127.0.0.1:9",
        "aws_access_key_id": "x",
        "aws_secret_access_key": "x",
    }
    async with (
        session.create_client("dynamodb", **kwargs) as raw_client,
        session.create_client("dynamodb", **kwargs) as lib_client,
    ):
        for client in (raw_client, lib_client):
            handler = before_send_handler(client, _short_circuit)
            client.meta.events.register("before-send.dynamodb", handler)
        method = getattr(raw_client, _METHODS[operation])
        store = AsyncCounterStore(lib_client, "counters")
        counter = _counter(store, strategy)
        await counter.create()
        rid = "r" if strategy != "atomic" else None

        async def timed(library: bool, n: int) -> float:
            started = time.thread_time()
            for _ in range(n):
                if library:
                    await counter.add(1, request_id=rid)
                else:
                    await method(**params)
            return time.thread_time() - started

        await timed(False, 50)
        await timed(True, 50)
        ratios = []
        for _ in range(rounds):
            base = ours = 0.0
            for _ in range(max(1, adds // BATCH)):
                base += await timed(False, BATCH)
                ours += await timed(True, BATCH)
            ratios.append(ours / base)
        return ratios


def _line(strategy: str, ratios: list[float]) -> str:
    return (
        f"{strategy:<12} {statistics.median(ratios):5.3f}  "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}, {len(ratios)} rounds)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adds", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--sync-only", action="store_true")
    args = parser.parse_args(argv)
    print("sync add / raw botocore, same request (median ratio):")
    for strategy in STRATEGIES:
        print("  " + _line(strategy, measure_sync(strategy, args.adds, args.rounds)))
    if args.sync_only:
        return 0
    try:
        import aiobotocore  # noqa: F401
    except ImportError:
        print("async: aiobotocore not installed (pip install 'dynamodb-counters[async]')")
        return 0
    print("async add / raw aiobotocore, same request (median ratio):")
    for strategy in STRATEGIES:
        ratios = asyncio.run(measure_async(strategy, args.adds, args.rounds))
        print("  " + _line(strategy, ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
