"""A worker process for tests/test_restart.py: settles adds against a DynamoDB endpoint.

    python tests/_worker.py ENDPOINT TABLE STRATEGY COUNTER OPS_JSON [--threads N] [--race]

OPS_JSON is a file holding ``[[request_id, amount], ...]``. Each outcome is written to stdout
as soon as it is known, one flushed line each: ``ack <id> <applied>`` or ``rej <id>``, so a
parent that kills this process knows exactly which requests were acknowledged. ``--race``: every
thread settles *all* the ops (the same request ids at once), after a line on stdin says go.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

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
    args = parser.parse_args()
    client = boto3.client(
        "dynamodb",
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"mode": "standard", "total_max_attempts": 3}),
    )
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
