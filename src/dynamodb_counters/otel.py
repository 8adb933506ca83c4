"""OpenTelemetry metrics (and optional spans) for a store: ``pip install
'dynamodb-counters[otel]'`` (the OpenTelemetry API only; your application brings the SDK and an
exporter). Off by default: nothing is measured until a store is instrumented::

    from dynamodb_counters.otel import instrument
    instrument(store)                       # the global MeterProvider (and TracerProvider)

Instruments (meter ``dynamodb_counters``):

=============================================  =========  ==================================
name                                           kind       attributes
=============================================  =========  ==================================
``dynamodb_counters.adds``                     counter    ``strategy``, ``outcome``: applied,
                                                          duplicate, refused, unknown, error
``dynamodb_counters.add.duration`` (s)         histogram  ``strategy``, ``outcome``
``dynamodb_counters.retries``                  counter    ``reason``: throttle, conflict,
                                                          ambiguity; ``by``: sdk, library
``dynamodb_counters.request.duration`` (s)     histogram  ``operation``, ``error_code``
``dynamodb_counters.consumed_capacity``        counter    ``operation`` (capacity units)
``dynamodb_counters.throttles``                counter    ``operation``, ``reason``
=============================================  =========  ==================================

``throttles`` counts every throttled attempt (re-sent by botocore or not); its ``reason`` is
DynamoDB's ``ThrottlingReasons`` reason where the answer gives one (e.g.
``TableWriteKeyRangeThroughputExceeded``), else the error code. With ``spans=True`` each add is
also a span ``dynamodb_counters.add`` (attributes ``counter``, ``strategy``, ``outcome``).

Failures of the telemetry itself (a meter or an exporter that raises) are logged at DEBUG and
never change an operation's outcome.
"""

from __future__ import annotations

import time
from typing import Any

from ._observe import Telemetry, reason_of
from ._steps import Send

try:
    from opentelemetry import metrics, trace
except ImportError as exc:  # pragma: no cover -- the [otel] extra is missing
    raise ImportError(
        "dynamodb_counters.otel needs the OpenTelemetry API: pip install 'dynamodb-counters[otel]'"
    ) from exc

__all__ = ["OtelTelemetry", "instrument", "uninstrument"]

_SCOPE = "dynamodb_counters"


class OtelTelemetry(Telemetry):
    """The OpenTelemetry instruments of one or more stores (see the module's table)."""

    def __init__(
        self,
        *,
        meter_provider: Any = None,
        tracer_provider: Any = None,
        spans: bool = False,
    ) -> None:
        from . import __version__

        meter = (meter_provider or metrics.get_meter_provider()).get_meter(_SCOPE, __version__)
        self._adds = meter.create_counter(
            "dynamodb_counters.adds", unit="{add}", description="Adds, by outcome"
        )
        self._add_duration = meter.create_histogram(
            "dynamodb_counters.add.duration", unit="s", description="An add's time, retries in"
        )
        self._retries = meter.create_counter(
            "dynamodb_counters.retries", unit="{retry}", description="Retries, by reason"
        )
        self._request_duration = meter.create_histogram(
            "dynamodb_counters.request.duration", unit="s", description="One DynamoDB request"
        )
        self._capacity = meter.create_counter(
            "dynamodb_counters.consumed_capacity",
            unit="{capacity_unit}",
            description="Capacity units DynamoDB reported",
        )
        self._throttles = meter.create_counter(
            "dynamodb_counters.throttles", unit="{attempt}", description="Throttled attempts"
        )
        self._tracer = (
            (tracer_provider or trace.get_tracer_provider()).get_tracer(_SCOPE, __version__)
            if spans
            else None
        )

    def request(
        self,
        step: Send,
        seconds: float,
        answer: dict[str, Any] | None,
        error_code: str | None,
        retried: list[BaseException],
    ) -> None:
        operation = step.operation
        self._request_duration.record(
            seconds, {"operation": operation, "error_code": error_code or ""}
        )
        units = _capacity_units((answer or {}).get("ConsumedCapacity"))
        if units:
            self._capacity.add(units, {"operation": operation})
        strategy = step.strategy or ""
        for failure in retried:
            reason = reason_of(_code(failure))
            self._retries.add(1, {"reason": reason, "by": "sdk", "strategy": strategy})
            if reason == "throttle":
                throttled = {"operation": operation, "reason": _throttle_reason(failure)}
                self._throttles.add(1, throttled)
        if error_code is not None and reason_of(error_code) == "throttle":
            self._throttles.add(
                1, {"operation": operation, "reason": _reason_in(answer) or error_code}
            )

    def retry(self, reason: str, strategy: str | None) -> None:
        self._retries.add(1, {"reason": reason, "by": "library", "strategy": strategy or ""})

    def operation(
        self, name: str, counter: str, strategy: str | None, outcome: str, seconds: float
    ) -> None:
        attributes = {"strategy": strategy or "", "outcome": outcome}
        self._adds.add(1, attributes)
        self._add_duration.record(seconds, attributes)
        if self._tracer is not None:
            end = time.time_ns()
            span = self._tracer.start_span(
                f"dynamodb_counters.{name}",
                start_time=end - int(seconds * 1e9),
                attributes={"counter": counter, **attributes},
            )
            if outcome == "error":
                span.set_status(trace.Status(trace.StatusCode.ERROR))
            span.end(end_time=end)


def instrument(
    store: Any,
    *,
    meter_provider: Any = None,
    tracer_provider: Any = None,
    spans: bool = False,
    telemetry: OtelTelemetry | None = None,
) -> OtelTelemetry:
    """Measure ``store`` (a ``CounterStore`` or an ``AsyncCounterStore``) from now on.

    Args:
        store: the store to instrument.
        meter_provider: default: OpenTelemetry's global one.
        tracer_provider: default: the global one (used only with ``spans=True``).
        spans: also record a span per add.
        telemetry: share the instruments of another store instead of making new ones.

    Returns:
        The :class:`OtelTelemetry` now attached to the store.
    """
    chosen = telemetry or OtelTelemetry(
        meter_provider=meter_provider, tracer_provider=tracer_provider, spans=spans
    )
    store._io.telemetry = chosen
    return chosen


def uninstrument(store: Any) -> None:
    """Stop measuring ``store``."""
    store._io.telemetry = None


def _code(failure: BaseException) -> str:
    from ._io import error_code

    return error_code(failure)


def _capacity_units(consumed: Any) -> float:
    if isinstance(consumed, dict):
        consumed = [consumed]
    if not isinstance(consumed, list):
        return 0.0
    return float(sum(float(c.get("CapacityUnits") or 0) for c in consumed if isinstance(c, dict)))


def _reason_in(answer: dict[str, Any] | None) -> str | None:
    reasons = (answer or {}).get("ThrottlingReasons") or (answer or {}).get("Error", {}).get(
        "ThrottlingReasons"
    )
    if isinstance(reasons, list) and reasons and isinstance(reasons[0], dict):
        reason = reasons[0].get("reason")
        return str(reason) if reason else None
    return None


def _throttle_reason(failure: BaseException) -> str:
    response = getattr(failure, "response", None)
    return _reason_in(response if isinstance(response, dict) else None) or _code(failure)
