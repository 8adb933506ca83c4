"""Which strategy? ``dynamodb-counters advise`` asks what a counter needs and answers.

The needs: must a retry be recognised (idempotency), for how long (the window), must the value
stay within a floor or ceiling (bounds), how many adds per second reach one counter (rate), and
how much may a million adds cost (budget). The answer: a strategy (with its options), the reason
in one sentence, and the expected USD per million adds, worked out from DynamoDB's pricing rules
(:mod:`dynamodb_counters.bench.metrics`) for the items each strategy writes.

The rules, in order (each one a branch of :func:`candidates`):

* no idempotency: ``atomic`` (one ``ADD``; bounds in its condition), the cheapest exact write;
* idempotency, no bounds, a window of "forever": ``collection`` (a delta item per add, kept
  until compacted; its value is a Query that grows with the deltas, priced apart);
* idempotency within 10 minutes: ``transaction`` (ClientRequestToken: 2 write units);
* a longer window: ``marker`` (a marker item per add, kept for the window by TTL);
* more adds per second than one item takes (about 1,000 write units/s): ``sharded`` with enough
  shards (a power of two, at most 64), each taking about 250 adds/s: every sharded add writes its
  shard and a marker in one transaction (4 write units), whatever the need for idempotency.

``occ``, ``occ_history`` and ``set`` are never the answer: ``occ`` costs more than ``atomic`` for
the same promise, and the other two remember a number of ids, not a time, so a burst pushes a
retry out of their window.

**Scale** (:data:`LIMITS`, :func:`plan`): what one counter can take on AWS, and why -- a
partition's 1,000 write and 3,000 read units/s (a counter and its markers, a shard and its
markers, share one), a new on-demand table's 4,000 write units/s of warm throughput, the table's
default quota of 40,000 write and read units/s, the 99-shard ceiling of one transaction, and
the client CPU of one Python process -- and a plan for a rate: shards, counters, tables, client
processes and USD per million adds.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from typing import Any

from ._validate import duration
from .bench import metrics as m
from .errors import InvalidInput
from .strategies import STRATEGIES

#: One partition takes this many write units per second; an item and the items sharing its
#: partition key (a counter and its markers, a shard and its markers) share them.
ITEM_WRITE_UNITS_PER_S = 1000.0
#: ... and this many read units per second.
PARTITION_READ_UNITS_PER_S = 3000.0
#: A new on-demand table's warm throughput: what it takes at once (about 4 partitions).
WARM_WRITE_UNITS_PER_S = 4000.0
#: A table's default quota (on-demand), write units/s and read units/s alike; AWS raises it on
#: request (Service Quotas).
TABLE_QUOTA_UNITS_PER_S = 40000.0
#: One transaction holds at most 100 items: a sharded snapshot reads every shard and the marker.
TRANSACTION_ITEMS = 100
#: What one Python process drives, client CPU only (botocore's request building and parsing
#: dominate): adds/s, low and high (benchmarks/overhead.py on a 2-core machine).
PROCESS_ADDS_PER_S = (2000.0, 2600.0)
#: ClientRequestToken's memory.
TOKEN_WINDOW_S = 600.0
#: The marker TTL offered when a window of "forever" meets a bound.
LONGEST_TTL_S = 365 * 86400.0
#: Sizes priced (bytes): a counter item (name, value, stored definition) and a marker or delta
#: item (key, digest, amount, request id, nonce, expiry) -- both under 1 KB for names and ids
#: of ordinary length, as the bench measures them.
COUNTER_ITEM_BYTES = 300
SIDE_ITEM_BYTES = 250
#: sharded: a shard update and a marker put in one transaction (both under 1 KB), x2.
SHARDED_UNITS_PER_ADD = 4
#: The most shards advised: the largest power of two a counter may have (99).
MAX_SHARDS = 64
#: The most a counter may have: a snapshot reads every shard and the marker in one transaction.
SHARD_CEILING = TRANSACTION_ITEMS - 1


def parse_window(text: str) -> float:
    """``"30s"``, ``"10m"``, ``"1h"``, ``"7d"`` (seconds if no unit) or ``"forever"`` (inf)."""
    if text.strip().lower() == "forever":
        return math.inf
    try:
        seconds = duration(text)  # the syntax of every duration flag
    except InvalidInput:
        raise argparse.ArgumentTypeError(
            f"not a window: {text!r} (for example 10m, 1h, 7d or forever)"
        ) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("a window must be longer than 0")
    return seconds


def describe_window(seconds: float) -> str:
    """``"1 hour"``, ``"7 days"``, ``"forever"``..."""
    if math.isinf(seconds):
        return "forever"
    for unit, size in (("day", 86400.0), ("hour", 3600.0), ("minute", 60.0), ("second", 1.0)):
        if seconds >= size or unit == "second":
            count = seconds / size
            return f"{count:g} {unit}{'' if count == 1 else 's'}"
    raise AssertionError("unreachable")


def _ttl_seconds(seconds: float) -> int:
    """A marker TTL as ``counter create --marker-ttl`` and ``marker_ttl=`` both take it:
    whole seconds."""
    return math.ceil(seconds)


@dataclass(frozen=True, slots=True)
class Needs:
    """What one counter needs.

    Attributes:
        idempotent: a retried add with the same request id must not count twice.
        window: for how long a retry must be recognised, in seconds (``math.inf``: forever);
            giving one implies ``idempotent``.
        bounds: the value must stay within a floor and/or ceiling.
        rate: adds per second on this one counter, at peak.
        budget: the most a million adds may cost (USD), if any.
    """

    idempotent: bool = False
    window: float | None = None
    bounds: bool = False
    rate: float = 100.0
    budget: float | None = None

    @property
    def needs_idempotency(self) -> bool:
        return self.idempotent or self.window is not None

    @property
    def window_seconds(self) -> float:
        return TOKEN_WINDOW_S if self.window is None else self.window


@dataclass(frozen=True, slots=True)
class Choice:
    """An answer: the strategy, its options, why, and what a million adds cost."""

    strategy: str
    reason: str
    usd_per_million: float
    units: str
    options: dict[str, Any] = field(default_factory=dict)
    warning: str | None = None


def _wru(size: int, *, transactional: bool = False) -> int:
    return m.write_units(size) * (2 if transactional else 1)


def _price(wru: float, rru: float, wru_price: float, rru_price: float) -> float:
    return m.cost_per_million(wru, rru, wru_price=wru_price, rru_price=rru_price)


def candidates(
    needs: Needs, *, wru_price: float = m.WRU_PRICE, rru_price: float = m.RRU_PRICE
) -> list[Choice]:
    """Every strategy that meets ``needs``, best first (see the module docstring)."""
    found: list[Choice] = []
    counter_wru = _wru(COUNTER_ITEM_BYTES)
    if not needs.needs_idempotency:
        found.append(
            Choice(
                "atomic",
                "no retry needs recognising, so one ADD per add is enough: the cheapest exact "
                "write, with the bounds checked in the same request",
                _price(counter_wru, 0, wru_price, rru_price),
                f"{counter_wru} write unit per add",
            )
        )
    if needs.needs_idempotency and not needs.bounds and math.isinf(needs.window_seconds):
        # A transaction: the check of the counter item and the delta put, each x2.
        delta_wru = _wru(COUNTER_ITEM_BYTES, transactional=True) + _wru(
            SIDE_ITEM_BYTES, transactional=True
        )
        per_read = m.read_units(1000 * SIDE_ITEM_BYTES)
        found.append(
            Choice(
                "collection",
                "only collection remembers every request id for good (a delta item each, "
                "until compacted) and you need no bound, which it cannot enforce; its value() "
                f"reads grow with the deltas (about {per_read:g} read units per 1,000 deltas: "
                "compact them)",
                _price(delta_wru, 0, wru_price, rru_price),
                f"{delta_wru} write units per add (counter check and delta put, x2 in a "
                "transaction), plus value() reads",
            )
        )
    if needs.needs_idempotency and needs.window_seconds <= TOKEN_WINDOW_S:
        wru = _wru(COUNTER_ITEM_BYTES, transactional=True)
        found.append(
            Choice(
                "transaction",
                "a retry within 10 minutes is recognised by DynamoDB itself "
                "(ClientRequestToken), in one transactional write that also checks the bounds",
                _price(wru, 0, wru_price, rru_price),
                f"{wru} write units per add (a transaction costs twice)",
            )
        )
    forever = math.isinf(needs.window_seconds)
    if needs.needs_idempotency and (not forever or needs.bounds):
        wru = _wru(COUNTER_ITEM_BYTES, transactional=True) + _wru(
            SIDE_ITEM_BYTES, transactional=True
        )
        # No strategy both remembers forever and enforces a bound: the longest finite window.
        window = LONGEST_TTL_S if forever else max(needs.window_seconds, 60.0)
        found.append(
            Choice(
                "marker",
                f"a retry within {describe_window(window)} is recognised by a marker item "
                "kept that long (TTL), written in one transaction with the counter update that "
                "checks the bounds",
                _price(wru, 0, wru_price, rru_price),
                f"{wru} write units per add (counter update and marker put, x2 in a transaction)",
                options={"marker_ttl": _ttl_seconds(window)},
                warning=(
                    "no strategy remembers request ids forever and enforces a bound "
                    "(collection remembers, but cannot hold a floor): a marker kept a year"
                    if forever
                    else None
                ),
            )
        )
    return [_fit_rate(choice, needs, wru_price, rru_price) for choice in found]


def _sharded(choice: Choice, needs: Needs, wru_price: float, rru_price: float) -> Choice:
    """``sharded`` for a rate one item cannot take: every add writes its shard and a marker on
    the shard's partition in one transaction (4 write units, marker-like, whatever the need for
    idempotency), so a shard takes about 250 adds/s. Past what one counter takes in one table
    at the default quota (or 64 shards), the warning gives :func:`plan`'s split."""
    per_shard = ITEM_WRITE_UNITS_PER_S / SHARDED_UNITS_PER_ADD
    found = plan(needs.rate, wru_price=wru_price)
    shards = found.shards_per_counter
    warnings = [choice.warning] if choice.warning else []
    if found.counters > 1:
        warnings.append(
            f"{needs.rate:,.0f} adds/s is more than one counter takes (about "
            f"{needs.rate / found.counters:,.0f} adds/s each here: a table's default quota is "
            f"{TABLE_QUOTA_UNITS_PER_S:,.0f} write units/s, a counter at most {SHARD_CEILING} "
            f"shards): split the stock over {found.counters} counters of {shards} shards "
            "(see the plan)"
        )
    options: dict[str, Any] = {"shards": shards}
    if "marker_ttl" in choice.options:
        options["marker_ttl"] = choice.options["marker_ttl"]
    elif choice.strategy == "collection":
        options["marker_ttl"] = _ttl_seconds(LONGEST_TTL_S)
        warnings.append(
            "sharded remembers a request id while its marker lives (a year here), not for good "
            "as collection does"
        )
    price = _price(SHARDED_UNITS_PER_ADD, 0, wru_price, rru_price)
    return Choice(
        "sharded",
        f"{needs.rate:,.0f} adds/s is more than one item takes with {choice.strategy} "
        f"(about {_item_rate(choice):,.0f}/s): {shards} shards of about {per_shard:,.0f} adds/s "
        "each share the load, and the bounds by escrow (room moves between shards when one "
        "runs dry, in the add's own transaction)",
        price,
        f"{SHARDED_UNITS_PER_ADD} write units per add (shard update and marker put, x2 in a "
        "transaction); an add on a dry shard also reads the shards and its marker (one "
        "eventually consistent BatchGetItem, half a read unit each) and writes 2 units per "
        "donor shard; a refusal reads them consistently (TransactGetItems, 2 read units each)",
        options=options,
        warning="; ".join(warnings) or None,
    )


def _item_rate(choice: Choice) -> float:
    """Adds per second one counter item takes with this strategy (its partition's write units
    over the units of one add)."""
    per_add = {"atomic": 1, "collection": 4, "transaction": 2, "marker": 4}[choice.strategy]
    return ITEM_WRITE_UNITS_PER_S / per_add


def _fit_rate(choice: Choice, needs: Needs, wru_price: float, rru_price: float) -> Choice:
    limit = _item_rate(choice)
    if needs.rate <= limit:
        return choice
    if "sharded" in STRATEGIES:
        return _sharded(choice, needs, wru_price, rru_price)
    shards = 2 ** math.ceil(math.log2(needs.rate / limit))
    split = (
        f"{needs.rate:,.0f} adds/s is more than one item takes with {choice.strategy} "
        f"(about {limit:,.0f}/s): split the counter over {shards} items (the sharded "
        "strategy is not in this version)"
    )
    return Choice(
        choice.strategy,
        choice.reason,
        choice.usd_per_million,
        choice.units,
        options=choice.options,
        warning=f"{choice.warning}; {split}" if choice.warning else split,
    )


def advise(
    needs: Needs, *, wru_price: float = m.WRU_PRICE, rru_price: float = m.RRU_PRICE
) -> Choice:
    """The best strategy for ``needs``; over the budget, it says so in ``warning``."""
    ranked = sorted(
        candidates(needs, wru_price=wru_price, rru_price=rru_price),
        key=lambda c: c.usd_per_million,
    )
    best = ranked[0]
    if needs.budget is not None and best.usd_per_million > needs.budget:
        over = (
            f"no strategy meets these needs within ${needs.budget:,.2f} per million adds; "
            f"the cheapest costs ${best.usd_per_million:,.2f}"
        )
        warning = f"{best.warning}; {over}" if best.warning else over
        return Choice(
            best.strategy, best.reason, best.usd_per_million, best.units, best.options, warning
        )
    return best


# -- scale on AWS ----------------------------------------------------------------------------

#: What one counter can take on AWS, and why: one line each (``advise``, the README and the
#: report print these very lines).
LIMITS = (
    f"one partition takes {ITEM_WRITE_UNITS_PER_S:,.0f} write units/s and "
    f"{PARTITION_READ_UNITS_PER_S:,.0f} read units/s, and a counter shares its partition with its "
    "markers (a shard with its markers): one counter item takes ~1,000 atomic adds/s, ~500 "
    "transaction adds/s, ~250 marker adds/s; one shard ~250 sharded adds/s",
    f"a new on-demand table has {WARM_WRITE_UNITS_PER_S:,.0f} write units/s of warm throughput "
    "(about 4 partitions) and grows with its traffic: ~1,000 sharded adds/s at first, more "
    "once warmed (set the table's warm throughput before a planned peak)",
    f"a table's default quota is {TABLE_QUOTA_UNITS_PER_S:,.0f} write units/s and "
    f"{TABLE_QUOTA_UNITS_PER_S:,.0f} read units/s: ~10,000 sharded adds/s per table (4 write "
    "units each) unless AWS raises it",
    f"one transaction holds at most {TRANSACTION_ITEMS} items and a sharded snapshot reads every "
    f"shard and the marker in one: at most {SHARD_CEILING} shards, ~24,750 adds/s per counter",
    f"one Python process drives ~{PROCESS_ADDS_PER_S[0]:,.0f}-{PROCESS_ADDS_PER_S[1]:,.0f} "
    "adds/s of client CPU: more adds/s need more processes (or hosts)",
)

#: The rates every plan is stated for (``advise`` prints both; the README and the report too).
PLAN_RATES = (10_000.0, 100_000.0)


@dataclass(frozen=True, slots=True)
class Plan:
    """How to take ``rate`` adds/s on one logical counter with ``sharded`` on AWS.

    Attributes:
        rate: adds per second at peak.
        write_units: write units per second it takes (4 per add; moves of room extra).
        shards: shards in all (about 250 adds/s each).
        counters: counters the stock is split over (one unless a limit forces more).
        shards_per_counter: each counter's shards (a power of two, at most 64).
        tables: tables at the default quota (40,000 write units/s each).
        processes: (fewest, most) client processes, at 2,600 and 2,000 adds/s each.
        usd_per_million: USD per million adds by the pricing rules (moves of room extra).
        steps: what to do, and which limit says so, one sentence each.
    """

    rate: float
    write_units: float
    shards: int
    counters: int
    shards_per_counter: int
    tables: int
    processes: tuple[int, int]
    usd_per_million: float
    steps: tuple[str, ...]


def plan(rate: float, *, wru_price: float = m.WRU_PRICE) -> Plan:
    """The plan for ``rate`` adds/s on one logical counter (see :data:`LIMITS`)."""
    per_shard = ITEM_WRITE_UNITS_PER_S / SHARDED_UNITS_PER_ADD
    units = rate * SHARDED_UNITS_PER_ADD
    shards = max(1, math.ceil(rate / per_shard))
    tables = max(1, math.ceil(units / TABLE_QUOTA_UNITS_PER_S))
    per_counter_rate = min(MAX_SHARDS * per_shard, TABLE_QUOTA_UNITS_PER_S / SHARDED_UNITS_PER_ADD)
    counters = max(1, math.ceil(rate / per_counter_rate))
    shards_per_counter = min(MAX_SHARDS, 2 ** math.ceil(math.log2(max(1, shards / counters))))
    processes = (
        math.ceil(rate / PROCESS_ADDS_PER_S[1]),
        math.ceil(rate / PROCESS_ADDS_PER_S[0]),
    )
    steps = [
        f"{units:,.0f} write units/s at {SHARDED_UNITS_PER_ADD} a sharded add (a shard update "
        f"and a marker put, x2 in a transaction); a partition takes "
        f"{ITEM_WRITE_UNITS_PER_S:,.0f}, so at least {shards:,} shards of ~{per_shard:,.0f} "
        "adds/s"
    ]
    if units > WARM_WRITE_UNITS_PER_S:
        steps.append(
            f"more than a new table's warm throughput ({WARM_WRITE_UNITS_PER_S:,.0f} write "
            f"units/s): set the table's warm throughput to {units / tables:,.0f} write units/s "
            "before the peak, or it throttles while it grows"
        )
    if units > TABLE_QUOTA_UNITS_PER_S:
        steps.append(
            f"more than a table's default quota ({TABLE_QUOTA_UNITS_PER_S:,.0f} write units/s): "
            f"{tables} tables at the default quota, or ask AWS to raise the quota"
        )
    elif units > 0.8 * TABLE_QUOTA_UNITS_PER_S:
        steps.append(
            f"{units / TABLE_QUOTA_UNITS_PER_S:.0%} of a table's default quota "
            f"({TABLE_QUOTA_UNITS_PER_S:,.0f} write units/s): no headroom for moves, retries or "
            "other traffic; ask AWS to raise it, or split over 2 counters in 2 tables"
        )
    if counters > 1:
        reasons = []
        if units > TABLE_QUOTA_UNITS_PER_S:
            reasons.append(
                f"one counter lives in one table ({TABLE_QUOTA_UNITS_PER_S:,.0f} write units/s "
                "at the default quota)"
            )
        if shards > SHARD_CEILING:
            reasons.append(
                f"a counter has at most {SHARD_CEILING} shards (one transaction reads at most "
                f"{TRANSACTION_ITEMS} items)"
            )
        steps.append(
            f"{' and '.join(reasons) or 'more than one counter takes'}: split the stock over "
            f"{counters} counters of {shards_per_counter} shards (at most one a table at the "
            "default quota), each with its share of the bounds, and route each request id to "
            "one of them (by its digest); the library does not move stock between counters"
        )
    steps.append(
        f"{_processes_text(processes)} (one Python process drives "
        f"~{PROCESS_ADDS_PER_S[0]:,.0f}-{PROCESS_ADDS_PER_S[1]:,.0f} adds/s)"
    )
    return Plan(
        rate=rate,
        write_units=units,
        shards=shards,
        counters=counters,
        shards_per_counter=shards_per_counter,
        tables=tables,
        processes=processes,
        usd_per_million=SHARDED_UNITS_PER_ADD * wru_price,
        steps=tuple(steps),
    )


def _processes_text(processes: tuple[int, int]) -> str:
    """``4-5 client processes``; one number when both ends agree (``1 client process``, not
    ``1-1 client processes``)."""
    fewest, most = processes
    count = str(fewest) if fewest == most else f"{fewest}-{most}"
    return f"{count} client process{'' if most == 1 else 'es'}"


def plan_lines(found: Plan) -> list[str]:
    """A plan as text: a headline, then one line per step."""
    head = (
        f"at {found.rate:,.0f} adds/s: sharded, {found.counters} counter"
        f"{'' if found.counters == 1 else 's'} of {found.shards_per_counter} shards, "
        f"{found.tables} table{'' if found.tables == 1 else 's'}, "
        f"{_processes_text(found.processes)}, "
        f"${found.usd_per_million:,.2f} per million adds (plus reads when room moves)"
    )
    return [head, *(f"  - {step}" for step in found.steps)]


def _plan_json(found: Plan) -> dict[str, Any]:
    return {
        "adds_per_second": found.rate,
        "write_units_per_second": found.write_units,
        "shards": found.shards,
        "counters": found.counters,
        "shards_per_counter": found.shards_per_counter,
        "tables": found.tables,
        "client_processes": list(found.processes),
        "usd_per_million_adds": round(found.usd_per_million, 4),
        "steps": list(found.steps),
    }


# -- the command -----------------------------------------------------------------------------


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``advise`` subcommand's options."""
    parser.add_argument(
        "--idempotent",
        action="store_true",
        help="a retried add (same request id) must not count twice",
    )
    parser.add_argument(
        "--window",
        type=parse_window,
        default=None,
        help="how long a retry must be recognised: 30s, 10m, 1h, 7d or forever "
        "(implies --idempotent; default 10m)",
    )
    parser.add_argument(
        "--floor",
        "--bounds",
        "--ceiling",
        dest="bounds",
        action="store_true",
        help="the value must stay within a floor and/or ceiling",
    )
    parser.add_argument(
        "--adds-per-second",
        "--rate",
        dest="rate",
        type=_rate,
        default=100.0,
        help="adds per second on one counter at peak (100); above what one item takes, the "
        "answer adds a plan naming AWS's limits",
    )
    parser.add_argument(
        "--budget", type=_rate, default=None, help="most USD a million adds may cost"
    )
    parser.add_argument(
        "--wru-price", type=_rate, default=m.WRU_PRICE, help="USD per million write units"
    )
    parser.add_argument(
        "--rru-price", type=_rate, default=m.RRU_PRICE, help="USD per million read units"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def create_command(choice: Choice) -> str:
    """The ``counter create`` command line for ``choice`` (every option as the CLI takes it)."""
    options = "".join(
        f" --{name.replace('_', '-')} {value}" for name, value in choice.options.items()
    )
    return f"dynamodb-counters counter create NAME --strategy {choice.strategy}{options}"


def describe_options(options: dict[str, Any]) -> str:
    """``", shards=8, marker_ttl=3600 (1 hour)"``: options as the CLI takes them, durations
    also in words."""
    parts = []
    for name, value in options.items():
        text = f", {name}={value}"
        if name == "marker_ttl":
            text += f" ({describe_window(float(value))})"
        parts.append(text)
    return "".join(parts)


def run(args: argparse.Namespace) -> int:
    """``dynamodb-counters advise``: print the answer; exit 0 (1 when over the budget)."""
    import json

    needs = Needs(
        idempotent=args.idempotent,
        window=args.window,
        bounds=args.bounds,
        rate=args.rate,
        budget=args.budget,
    )
    choice = advise(needs, wru_price=args.wru_price, rru_price=args.rru_price)
    over_budget = needs.budget is not None and choice.usd_per_million > needs.budget
    found = plan(needs.rate, wru_price=args.wru_price) if choice.strategy == "sharded" else None
    if args.json:
        print(
            json.dumps(
                {
                    "strategy": choice.strategy,
                    "options": choice.options,
                    "reason": choice.reason,
                    "usd_per_million_adds": round(choice.usd_per_million, 4),
                    "units": choice.units,
                    "warning": choice.warning,
                    "create": create_command(choice),
                    "plan": None if found is None else _plan_json(found),
                    "limits": list(LIMITS),
                },
                indent=2,
            )
        )
    else:
        print(f"strategy: {choice.strategy}{describe_options(choice.options)}")
        print(f"why: {choice.reason}.")
        print(
            f"cost: ${choice.usd_per_million:,.3f} per million adds ({choice.units}, "
            f"at ${args.wru_price}/M write units, ${args.rru_price}/M read units)"
        )
        bounds = " (add --floor N and/or --ceiling N)" if needs.bounds else ""
        print(f"create: {create_command(choice)}{bounds}")
        if choice.warning:
            print(f"warning: {choice.warning}.")
        if found is not None:
            print("plan " + "\n".join(plan_lines(found)))
        print("limits on AWS (why one counter takes what it takes):")
        for line in LIMITS:
            print(f"  - {line}")
    return 1 if over_budget else 0
