"""A worker process for tests/test_restart.py: settles adds against a DynamoDB endpoint.

    python tests/_worker.py ENDPOINT TABLE STRATEGY COUNTER OPS_JSON [--threads N] [--race]
        [--api sync|async]

OPS_JSON is a file holding ``[[request_id, amount], ...]``. Each outcome is written to stdout
as soon as it is known, one flushed line each: ``ack <id> <applied>`` or ``rej <id>``, so a
parent that kills this process knows exactly which requests were acknowledged. ``--race``: every
thread settles *all* the ops (the same request ids at once), after a line on stdin says go.
``--api async``: the counter is an ``AsyncCounterStore``'s on an aiobotocore client, and the
threads' adds become tasks on one event loop (``_api.SyncView``).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ledger import Ledger, settle
from dynamodb_counters import STRATEGIES, AddResult, CounterStore

_out = threading.Lock()


def say(line: str) -> None:
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Reporting(Ledger):
    def ack(self, op_id: str, amount: int, result: AddResult) -> None:
        super().ack(op_id, amount, result)
        say(f"ack {op_id} {result.applied}")

    def reject(self, op_id: str, amount: int) -> None:
        super().reject(op_id, amount)
        say(f"rej {op_id}")


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("endpoint", "table", "strategy", "counter", "ops"):
        parser.add_argument(name)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--floor", type=int, default=None)
    parser.add_argument("--race", action="store_true")
    parser.add_argument("--api", choices=["sync", "async"], default="sync")
    args = parser.parse_args()
    where: dict[str, Any] = {
        "endpoint_url": args.endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "local",
        "aws_secret_access_key": "local",
    }
    retries: Any = {"mode": "standard", "total_max_attempts": 3}
    store: Any
    if args.api == "async":
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        from _api import SyncView
        from _api import run as run_on_loop
        from dynamodb_counters.aio import AsyncCounterStore

        manager = get_session().create_client(
            "dynamodb", **where, config=AioConfig(retries=retries)
        )
        store = SyncView(AsyncCounterStore(run_on_loop(manager.__aenter__()), args.table))
    else:
        client = boto3.client("dynamodb", **where, config=Config(retries=retries))
        store = CounterStore(client, args.table)
    counter = store.counter(args.counter, strategy=args.strategy, floor=args.floor)
    idempotent = STRATEGIES[args.strategy].idempotent
    ops = [(str(i), int(a)) for i, a in json.loads(Path(args.ops).read_text())]
    ledger = Reporting(initial=0)
    shares = [ops if args.race else ops[t :: args.threads] for t in range(args.threads)]
    if args.race:
        say("ready")
        sys.stdin.readline()

    def run(share: list[tuple[str, int]]) -> None:
        for op_id, amount in share:
            settle(counter, amount, op_id, ledger, idempotent=idempotent, pause=0.01)

    threads = [threading.Thread(target=run, args=(share,)) for share in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    say("done")


if __name__ == "__main__":
    main()
