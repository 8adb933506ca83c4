"""What the bench hands the report (``results.json``): the document's types, in one place.

The bench builds a :class:`BenchResults` and the report reads one, so ``mypy --strict`` checks
both ends against these declarations. ``schema_version`` 1 is the document as the first release
wrote it; fields added since are ``NotRequired`` (a reader of an older document finds them
missing), so the version only moves when a field changes meaning or goes away.
:func:`read_results` is the report's way in from JSON.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from ..errors import InvalidInput

SCHEMA = "dynamodb-counters/bench-results"
SCHEMA_VERSION = 1


class Spread(TypedDict):
    """Min, median and max of a figure over rounds (None: no rounds)."""

    min: float | None
    median: float | None
    max: float | None


class Verdict(TypedDict):
    kind: str  # exact, drifted, oversold, unenforced
    text: str
    notes: list[str]


class Counts(TypedDict):
    operations: int
    attempted: int
    acknowledged: int
    applied: int
    duplicates: int
    unknown: int
    rejected: int
    errors: int
    errors_by_type: dict[str, int]
    outcome_unknown: int
    outcome_unknown_range: list[int]
    app_retries: int
    duplicate_sends: int
    acknowledged_ids: int


class LostAnswerOps(TypedDict):
    increments: int
    decrements: int
    resent_up: int
    resent_down: int


class Ledger(TypedDict):
    initial: int
    expected: int
    final: int
    drift: int
    drift_beyond_unknown: int
    lost_answer_ops: LostAnswerOps
    floor: int | None
    ceiling: int | None
    asked_floor: int | None
    asked_ceiling: int | None
    thresholds_enforced: bool
    bounds_dropped: bool
    oversold: int
    over_ceiling: int
    min_seen: int
    max_seen: int
    observations: int
    floor_crossed: bool
    ceiling_crossed: bool


class Throughput(TypedDict):
    seconds: float
    ops_per_s: float
    applied_per_s: float
    rounds: int
    ops_per_s_spread: Spread


class Latency(TypedDict):
    p50: float | None
    p95: float | None
    p99: float | None
    mean: float | None
    max: float | None
    p50_spread: Spread
    p99_spread: Spread


class RoundFigures(TypedDict):
    attempted: int
    seconds: float
    ops_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    lost_answers: int


class Requests(TypedDict):
    http_attempts: int
    per_op: float
    library_calls: int
    sdk_retries: int
    answered_by_injected_faults: int
    lost_answers: int
    throttled: int
    by_operation: dict[str, int]


class FaultsInjected(TypedDict):
    lost_answers: int
    throttles: int
    conflicts: int
    item_throttles: int


class EstimatedUnits(TypedDict):
    rru: float
    wru: float
    rru_per_op: float
    wru_per_op: float


class ReportedUnits(EstimatedUnits):
    answers_with_capacity: int
    answers_without_capacity: int
    left_out_rru: float
    left_out_wru: float


class OutcomeUnits(TypedDict):
    ops: float
    rru: float
    wru: float


class Units(TypedDict):
    estimated: EstimatedUnits
    reported: ReportedUnits
    by_outcome: dict[str, OutcomeUnits]  # acked, rejected, error


class Cost(TypedDict):
    usd_per_million_ops: float
    usd_per_million_acked: float | None
    usd_per_million_rejected: float | None
    reported_usd_per_million_ops: float


class ValueRead(TypedDict, total=False):
    """What one ``value()`` read costs (empty when not measured)."""

    requests: int
    rru: float
    reported_rru: float
    items_in_partition: int
    usd_per_million_reads: float


class TargetResult(TypedDict):
    """One target's figures: a strategy, or the raw baseline (``baseline`` true)."""

    name: str
    baseline: bool
    counter: str
    # The strategy's capabilities (its dataclass's fields), ``window_numbers``, ``options``
    # and ``non_default_options``: open-ended, as strategies add facts.
    capabilities: dict[str, Any]
    counts: Counts
    ledger: Ledger
    throughput: Throughput
    latency_ms: Latency
    rounds: list[RoundFigures]
    requests: Requests
    faults_injected: FaultsInjected
    units: Units
    cost: Cost
    value_read: ValueRead
    verdict: NotRequired[Verdict]  # set right after the rest (it reads the rest)


class BackendInfo(TypedDict):
    kind: str
    endpoint_url: str | None
    region: str | None
    table: NotRequired[str]  # not for the flash sale alone (a table per target)


class PricingInfo(TypedDict):
    usd_per_million_wru: float
    usd_per_million_rru: float


class RunInfo(TypedDict):
    """The run; the flash-sale scenario run alone leaves out what belongs to the mixed
    workload (its own options are in its section)."""

    started_at: str
    seconds: float
    seed: int
    preset: str | None
    backend: BackendInfo
    versions: dict[str, str]
    cpus: int | None
    pricing: PricingInfo
    fault_seed: NotRequired[int]
    options: NotRequired[dict[str, Any]]  # BenchOptions as JSON
    rounds: NotRequired[int]
    units_note: NotRequired[str]
    #: "sync" (CounterStore on boto3: threads or processes) or "async" (AsyncCounterStore on
    #: aiobotocore: asyncio tasks). Missing before ``bench --async``: read it as "sync".
    api: NotRequired[str]
    run_id: NotRequired[str]
    stopped_by: NotRequired[str | None]
    finished_targets: NotRequired[list[str]]
    unfinished_targets: NotRequired[list[str]]
    left_behind: NotRequired[list[str]]


class Comparison(TypedDict, total=False):
    """``atomic`` against the raw baseline, when both ran (else empty)."""

    atomic_vs_raw_throughput: float | None
    atomic_vs_raw_spread: Spread
    atomic_vs_raw_rounds: int
    same_faults: bool
    faults_active: bool


class ApiQuotaRow(TypedDict):
    """One window type of ``bench --scenario api-quota`` (:mod:`dynamodb_counters.bench.quota`)."""

    window: str  # fixed, sliding
    limit: int
    per_s: float
    workers: int
    hits: int  # answered hits (a hit sent again after an error counts once)
    granted: int
    windows: int
    max_granted_in_a_window: int
    windows_over_the_limit: int  # must be 0
    stored_equals_granted: bool  # the window items hold exactly what was granted
    windows_checked: int
    hits_per_s: float
    p50_ms: float
    p99_ms: float
    write_units_per_hit: float
    read_units_per_hit: float
    usd_per_million_hits: float
    throttled_requests: int  # throttled answers of the AWS-like engine (botocore retries them)
    conflicts: int
    errors_reaching_clients: dict[str, int]  # by error code, after botocore's and the library's
    hits_given_up: int
    failures: list[str]
    windows_stored_otherwise: list[list[float | int | None]]


class ApiQuota(TypedDict):
    """The ``api_quota`` section: many clients against one quota, per window type."""

    scenario: str
    started_at: str
    engine: str  # aws-like, plain
    write_limit_per_partition: float | None
    limit: int
    per_s: float
    ops_per_client: int
    hit_tries: int
    rows: list[ApiQuotaRow]
    all_exact: bool


class BenchResults(TypedDict):
    """The whole ``results.json``."""

    schema: str
    schema_version: int
    run: RunInfo
    strategies: list[TargetResult]
    baseline: TargetResult | None
    comparison: Comparison
    partial: NotRequired[bool]
    #: "flash-sale" or "api-quota" for a run of that scenario alone (then ``strategies`` is empty).
    scenario: NotRequired[str]
    #: The flash-sale scenario's section (:mod:`dynamodb_counters.bench.flash`), when it ran.
    flash_sale: NotRequired[dict[str, Any]]
    #: The api-quota scenario's section (:mod:`dynamodb_counters.bench.quota`), when it ran.
    api_quota: NotRequired[ApiQuota]
    #: The checkout scenario's section (holds, :mod:`dynamodb_counters.bench.checkout`), when it
    #: ran (the demo): ``options``, ``targets`` (a row per target), ``all_exact``, ``verdict``.
    checkout: NotRequired[dict[str, Any]]


def read_results(document: Any) -> BenchResults:
    """``document`` (parsed JSON) as :class:`BenchResults`, after checking what it says it is.

    Raises:
        InvalidInput: not a bench results document, or one of a newer schema version.
    """
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise InvalidInput(f"not a bench results document (schema {SCHEMA!r})")
    version = document.get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise InvalidInput(
            f"bench results of schema version {version!r}: this report reads 1 to "
            f"{SCHEMA_VERSION}; upgrade dynamodb-counters"
        )
    results: BenchResults = document  # type: ignore[assignment]  # checked above; JSON is Any
    return results
