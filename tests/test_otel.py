"""OpenTelemetry metrics and spans (``dynamodb_counters.otel``), read back with the SDK's
in-memory reader and span exporter. Faults are forced below botocore (a hook that loses one
answer, fault plans at rate 1.0), so every figure is exact."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.httpsession import URLLib3Session
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from _api import SyncView
from _hooks import SendHook, operation_of
from conftest import fresh_client
from dynamodb_counters import ContentionError, CounterStore, InvalidInput, ThresholdExceeded
from dynamodb_counters.aio import AsyncCounterStore
from dynamodb_counters.faults import FaultInjector, FaultPlan
from dynamodb_counters.local import DynamoDBLocal
from dynamodb_counters.otel import instrument, uninstrument

ONE_TRY = {"mode": "standard", "total_max_attempts": 1}


class Metrics:
    """An SDK MeterProvider with an in-memory reader; ``points(name)`` sums by attributes."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])

    def points(self, name: str) -> dict[tuple[tuple[str, Any], ...], float]:
        found: dict[tuple[tuple[str, Any], ...], float] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        key = tuple(sorted((point.attributes or {}).items()))
                        # A counter's sum, or how many values a histogram recorded.
                        seen: Any = getattr(point, "value", None) or getattr(point, "count", 0)
                        found[key] = float(seen)
        return found


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    m = Metrics()
    yield m
    m.provider.shutdown()


class LoseFirst(SendHook):
    """The first ``operation`` request reaches the table, then its answer is lost."""

    def __init__(self, client: Any, operation: str) -> None:
        self.client, self.operation, self.fired = client, operation, False
        self._http = URLLib3Session()

    def _hook(self, request: Any, **_: Any) -> Any:
        if operation_of(request) != self.operation or self.fired:
            return None
        self.fired = True
        self._http.send(request)
        raise ReadTimeoutError(endpoint_url=request.url)


def test_adds_by_outcome_latency_and_capacity(
    ddb: DynamoDBLocal, table: str, metrics: Metrics
) -> None:
    store = CounterStore(ddb.client(), table)
    instrument(store, meter_provider=metrics.provider)
    seats = store.counter("seats", strategy="marker", floor=0)
    seats.create(initial=3)
    assert seats.add(-1, request_id="a").applied is True
    assert seats.add(-1, request_id="a").applied is False
    with pytest.raises(ThresholdExceeded):
        seats.add(-5, request_id="b")
    with pytest.raises(InvalidInput):
        seats.add(0)
    marker = ("strategy", "marker")
    assert metrics.points("dynamodb_counters.adds") == {
        (("outcome", "applied"), marker): 1,
        (("outcome", "duplicate"), marker): 1,
        (("outcome", "refused"), marker): 1,
        (("outcome", "error"), marker): 1,
    }
    assert sum(metrics.points("dynamodb_counters.add.duration").values()) == 4
    # create's transaction (issue 18, item 3), three TransactWriteItems (the refused one too);
    # InvalidInput sends none.
    assert metrics.points("dynamodb_counters.request.duration") == {
        (("error_code", ""), ("operation", "TransactWriteItems")): 2,
        (("error_code", "TransactionCanceledException"), ("operation", "TransactWriteItems")): 2,
    }
    capacity = metrics.points("dynamodb_counters.consumed_capacity")
    assert set(capacity) == {(("operation", "TransactWriteItems"),)}
    assert metrics.points("dynamodb_counters.retries") == {}
    assert seats.value() == 2


def test_retries_by_reason(ddb: DynamoDBLocal, table: str, metrics: Metrics) -> None:
    # A lost answer retried by the library (botocore makes one try only).
    client = fresh_client(ddb, retries=ONE_TRY)
    store = CounterStore(client, table)
    instrument(store, meter_provider=metrics.provider)
    seats = store.counter("seats", strategy="marker", retry_delay=0, max_attempts=2)
    seats.create(initial=0)
    with LoseFirst(client, "TransactWriteItems"):
        assert seats.add(1, request_id="lost-once").applied is True
    # Conflicts retried by the library, then given up.
    with FaultInjector(client, FaultPlan(conflict_rate=1.0)), pytest.raises(ContentionError):
        seats.add(1, request_id="busy")
    # Throttles re-sent by botocore (three tries), then raised.
    throttled = fresh_client(ddb, retries={"mode": "standard", "total_max_attempts": 3})
    other = CounterStore(throttled, table)
    instrument(other, meter_provider=metrics.provider)
    hot = other.counter("hot", strategy="atomic")
    hot.create(initial=0)
    with FaultInjector(throttled, FaultPlan(throttle_rate=1.0)), pytest.raises(ClientError):
        hot.add(1)
    assert metrics.points("dynamodb_counters.retries") == {
        (("by", "library"), ("reason", "ambiguity"), ("strategy", "marker")): 1,
        (("by", "library"), ("reason", "conflict"), ("strategy", "marker")): 1,
        (("by", "sdk"), ("reason", "throttle"), ("strategy", "atomic")): 2,
    }
    assert metrics.points("dynamodb_counters.throttles") == {
        (("operation", "UpdateItem"), ("reason", "ThrottlingException")): 3,
    }
    assert metrics.points("dynamodb_counters.adds") == {
        (("outcome", "applied"), ("strategy", "marker")): 1,
        (("outcome", "error"), ("strategy", "marker")): 1,
        (("outcome", "error"), ("strategy", "atomic")): 1,
    }
    assert seats.value() == 1


def test_a_throttle_reason_from_dynamodb_is_kept(
    ddb: DynamoDBLocal, table: str, metrics: Metrics
) -> None:
    """The per-item model answers as AWS does: ThrottlingReasons name the key range."""
    client = fresh_client(ddb, retries=ONE_TRY)
    store = CounterStore(client, table)
    instrument(store, meter_provider=metrics.provider)
    hot = store.counter("hot", strategy="atomic")
    hot.create(initial=0)
    plan = FaultPlan(item_write_limit=1)
    with FaultInjector(client, plan):
        for _ in range(3):
            try:
                hot.add(1)
            except ClientError:
                break
        else:
            pytest.fail("never throttled")
    reasons = {dict(k)["reason"] for k in metrics.points("dynamodb_counters.throttles")}
    assert reasons == {"TableWriteKeyRangeThroughputExceeded"}


def test_spans_per_add(ddb: DynamoDBLocal, table: str, metrics: Metrics) -> None:
    exporter = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(exporter))
    store = CounterStore(ddb.client(), table)
    instrument(store, meter_provider=metrics.provider, tracer_provider=tracing, spans=True)
    seats = store.counter("seats", strategy="transaction", floor=0)
    seats.create(initial=1)
    seats.add(-1, request_id="r1")
    with pytest.raises(ThresholdExceeded):
        seats.add(-1, request_id="r2")
    spans = exporter.get_finished_spans()
    assert [(s.name, dict(s.attributes or {})) for s in spans] == [
        (
            "dynamodb_counters.add",
            {"counter": "seats", "strategy": "transaction", "outcome": outcome},
        )
        for outcome in ("unknown", "refused")  # a bare token: DynamoDB Local cannot tell
    ]
    assert all(s.end_time is not None and s.start_time is not None for s in spans)
    assert all(s.end_time >= s.start_time for s in spans)  # type: ignore[operator]


class Raising:
    """A meter provider whose every instrument raises (an exporter gone wrong)."""

    def get_meter(self, *args: Any, **kwargs: Any) -> Raising:
        return self

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self

    def add(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("exporter down")

    record = add


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_telemetry_that_raises_changes_no_outcome(
    ddb: DynamoDBLocal, table: str, api: str
) -> None:
    if api == "sync":
        raw: Any = CounterStore(fresh_client(ddb, retries=ONE_TRY), table)
        store: Any = raw
    else:
        raw = AsyncCounterStore(fresh_client(ddb, "async", retries=ONE_TRY), table)
        store = SyncView(raw)
    instrument(raw, meter_provider=Raising())
    seats = store.counter("seats", strategy="marker", floor=0)
    seats.create(initial=2)
    assert seats.add(-1, request_id="a").applied is True
    assert seats.add(-1, request_id="a").applied is False
    with pytest.raises(ThresholdExceeded):
        seats.add(-2, request_id="b")
    assert seats.value() == 1
    uninstrument(raw)
    assert raw._io.telemetry is None


def test_the_async_api_is_measured_the_same(
    ddb: DynamoDBLocal, table: str, metrics: Metrics
) -> None:
    raw = AsyncCounterStore(fresh_client(ddb, "async"), table)
    instrument(raw, meter_provider=metrics.provider)
    seats = SyncView(raw).counter("seats", strategy="marker", floor=0)
    seats.create(initial=1)
    seats.add(-1, request_id="a")
    seats.add(-1, request_id="a")
    with pytest.raises(ThresholdExceeded):
        seats.add(-1, request_id="b")
    assert metrics.points("dynamodb_counters.adds") == {
        (("outcome", outcome), ("strategy", "marker")): 1
        for outcome in ("applied", "duplicate", "refused")
    }
