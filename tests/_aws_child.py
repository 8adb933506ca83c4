"""What a worker process does in tests/test_aws_like.py's shared-state test (spawned: a module
it can import): one request through its own client and injector, on the shared state."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from dynamodb_counters.aws_like import AwsLike, AwsLikeState
from dynamodb_counters.faults import FaultInjector, FaultPlan


def frozen() -> float:
    """The shared state's clock: buckets never refill (full or empty, never "almost")."""
    return 1000.0


def send(endpoint: str, model: AwsLike, state: AwsLikeState, call: str, params: Any) -> str:
    """``call(**params)`` through a fresh client whose injector uses ``state``: "ok", or the
    error code and cancellation reasons."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    with FaultInjector(client, FaultPlan(aws_like=model), aws_state=state):
        try:
            getattr(client, call)(**params)
        except ClientError as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            return " ".join([str(exc.response["Error"]["Code"]), *map(str, reasons)])
    return "ok"
