"""``dynamodb-counters bench`` and ``dynamodb-counters demo``: arguments and entry points.

The main CLI calls :func:`add_arguments_bench` / :func:`run_bench` and
:func:`add_arguments_demo` / :func:`run_demo`. Both return an exit code and print an error as
one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .._endpoints import check_endpoint
from ..aws_like import AwsLike
from ..errors import CounterError, InvalidInput
from ..faults import FaultPlan
from ..report.files import replace_file
from ..report.schema import BenchResults
from ..strategies import STRATEGIES
from .checkout import CHECKOUT, CheckoutOptions, checkout_section
from .flash import FLASH_SALE, SCENARIOS, FlashSale, FlashSaleOptions, run_flash_sale
from .metrics import RRU_PRICE, WRU_PRICE
from .options import Backend, BenchOptions, Pricing, SdkRetry
from .quota import API_QUOTA
from .quota import AWS_LIKE_WRITE_LIMIT as QUOTA_AWS_LIKE_WRITE_LIMIT
from .runner import BenchFailed, BenchInterrupted, open_backend, redact
from .workload import APP_RETRY_POLICIES, SDK_RETRY_MODES, AppRetry, BenchAborted, Mix

DEMO_DIR = "counter-report"


def demo_options(*, seed: int = 7) -> BenchOptions:
    """The demo's preset: the story of SPEC section 5 in well under a minute.

    Every strategy; 4 threads; 5% of answers lost below the SDK's retries (standard mode, 3
    attempts); 2% of requests re-sent by the application; a stock of 150 with a floor of 0 and
    240 orders (mostly one item, a few returns), so demand exceeds stock. ``atomic`` counts the
    re-sent orders twice (its drift is negative: items vanish from stock); idempotent strategies
    stay exact; no strategy with a floor sells below it. Every strategy runs with the library's
    defaults, except ``set``: it refuses new ids once it holds ``capacity`` (100), so the demo
    gives it room for its ~250 ids, and the results say so (its options are in the report).
    """
    return BenchOptions(
        strategies=tuple(STRATEGIES),
        workers=4,
        ops=60,
        initial=150,
        floor=0,
        mix=Mix(increment_share=0.1, amount=1, duplicate_rate=0.02),
        faults=FaultPlan(lost_answer_rate=0.05, seed=seed),
        sdk=SdkRetry(mode="standard", max_attempts=3),
        app_retry=AppRetry(policy="same-id", limit=3),
        compare_raw=True,
        seed=seed,
        preset="demo",
        rounds=5,
    )


#: The flash sale's defaults for ``bench --scenario flash-sale``: R = 10 write units/s per
#: item, so that 8 shards (at most 8 x R write units/s) stay below what DynamoDB Local sold
#: with the model off on a busy 2-core machine (55-96 adds/s; see the README). A quiet machine
#: can take a higher R (``--item-write-limit off`` measures the engine).
FLASH_DEFAULTS = FlashSaleOptions(stock=300, item_write_limit=10.0, workers=32)
#: AWS-like (the default), R is per partition: marker and each shard spend 4 units an add there
#: (the counter's or shard's update and the marker, 2 each in a transaction), so R = 30 gives
#: sharded@8 at most 60 adds/s, still below what DynamoDB Local sells on a busy 2-core machine.
FLASH_AWS_LIKE_WRITE_LIMIT = 30.0


def demo_flash_options(*, seed: int = 7) -> FlashSaleOptions:
    """The demo's flash sale: the story of SPEC sections 8 and 11 in about 35 seconds.

    AWS-like: a stock of 100 with 120 orders from 16 threads, R = 30 write units/s per
    partition: ``atomic`` sells about 30 adds/s, ``marker`` about 7.5 (its transaction writes
    the counter and the marker, 2 units each, in one partition), ``sharded`` (when in the build)
    at 1 and 8 shards (the bench's scenario adds 2 and 4): 8 partitions take 8 x as many units,
    less what conflicts and headroom moves cost.
    """
    return FlashSaleOptions(
        stock=100,
        demand=120,
        workers=16,
        item_write_limit=FLASH_AWS_LIKE_WRITE_LIMIT,
        shards=(1, 8),
        seed=seed,
        preset="demo",
        time_limit=60.0,
    )


def demo_checkout_options(*, seed: int = 7) -> CheckoutOptions:
    """The demo's checkout (SPEC section 13), AWS-like, small: 20 seats, 64 carts from 8
    threads, holds of 1 s and 0.25 s to pay, so that abandoned holds expire while carts are
    still coming (a refused cart reclaims them); marker and sharded x4, about 5 s each."""
    return CheckoutOptions(stock=20, carts=64, workers=8, ttl=1.0, think=0.25, shards=4, seed=seed)


def _number(text: str, kind: type[float] | type[int], low: float, high: float, rule: str) -> Any:
    """Parse an option's value as ``kind`` within ``[low, high]`` (NaN never is)."""
    try:
        value = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(rule)
    return value


def _rate(text: str) -> float:
    return float(_number(text, float, 0, 1, "must be from 0 to 1"))


def _price(text: str) -> float:
    return float(_number(text, float, 0, sys.float_info.max, "must be a finite price, 0 or more"))


def _positive(text: str) -> int:
    return int(_number(text, int, 1, math.inf, "must be at least 1"))


#: ``--item-write-limit off``: the per-item model off (the flash sale then measures the engine).
OFF = "off"


def _write_limit(text: str) -> float | str:
    return OFF if text.strip().lower() == OFF else _units(text)


def _seconds(text: str) -> float:
    return float(_number(text, float, 0, 3600, "must be a number of seconds from 0 to 3600"))


#: The AWS-like mode's defaults for the bench (the flash sale's are its options' defaults).
AWS_IN_FLIGHT = FlashSaleOptions().in_flight
AWS_STALENESS = FlashSaleOptions().staleness


def _aws_like_model(args: argparse.Namespace, write_limit: float | None) -> AwsLike:
    return AwsLike(
        write_limit=write_limit,
        read_limit=args.item_read_limit,
        partitions=args.partitions,
        in_flight=AWS_IN_FLIGHT if args.in_flight is None else args.in_flight,
        staleness=AWS_STALENESS if args.staleness is None else args.staleness,
    )


def _check_aws_flags(args: argparse.Namespace, *, aws_like: bool) -> None:
    if args.aws_like and args.plain:
        raise InvalidInput("--aws-like and --plain exclude each other")
    if not aws_like:
        for flag, given in (
            ("--partitions", args.partitions),
            ("--in-flight", args.in_flight),
            ("--staleness", args.staleness),
        ):
            if given is not None:
                raise InvalidInput(f"{flag} belongs to the AWS-like mode (--aws-like)")


def _units(text: str) -> float:
    rule = "must be a number of units per second above 0 (or off)"
    value = float(_number(text, float, 0, sys.float_info.max, rule))
    if value <= 0:
        raise argparse.ArgumentTypeError(rule)
    return value


def _shard_counts(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("give shard counts, e.g. 1,2,4,8")
    return tuple(
        int(_number(p, int, 1, 1000, "shard counts must be from 1 to 1000")) for p in parts
    )


def _strategies(text: str) -> tuple[str, ...]:
    if text.strip() == "all":
        return tuple(STRATEGIES)
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    for name in names:
        if name not in STRATEGIES:
            raise argparse.ArgumentTypeError(
                f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)} or all"
            )
    return names


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bars and no table")


def add_arguments_bench(parser: argparse.ArgumentParser) -> None:
    """The ``bench`` subcommand's options."""
    work = parser.add_argument_group("workload")
    parser.add_argument(
        "--scenario",
        choices=(*SCENARIOS, API_QUOTA, CHECKOUT),
        default=None,
        help="run a scenario instead of the mixed workload: flash-sale (SPEC section 8), "
        "api-quota (SPEC section 12), "
        "checkout (holds, SPEC section 13: --stock, --demand carts, --workers, --shards)",
    )
    work.add_argument(
        "--strategies",
        type=_strategies,
        default=None,
        help="comma-separated strategy ids, or all (default)",
    )
    work.add_argument(
        "--workers", type=_positive, default=None, help="concurrent workers (4; flash-sale: 32)"
    )
    work.add_argument(
        "--processes", action="store_true", help="workers are processes (default: threads)"
    )
    work.add_argument(
        "--async",
        dest="use_async",
        action="store_true",
        help="workers are asyncio tasks on one aiobotocore client (the async API)",
    )
    work.add_argument(
        "--ops", type=_positive, default=100, help="operations per worker per strategy (100)"
    )
    work.add_argument("--initial", type=int, default=1000, help="initial value (1000)")
    work.add_argument("--floor", type=int, default=None, help="lowest value allowed")
    work.add_argument("--ceiling", type=int, default=None, help="highest value allowed")
    work.add_argument(
        "--increment-share",
        type=_rate,
        default=0.5,
        help="share of operations that add; the rest subtract (0.5)",
    )
    work.add_argument(
        "--amount", type=_positive, default=1, help="largest amount per operation (1)"
    )
    work.add_argument(
        "--duplicate-rate",
        type=_rate,
        default=0.0,
        help="share of requests the application sends twice, same request id (0)",
    )
    work.add_argument("--seed", type=int, default=1, help="the workload's seed (1)")
    work.add_argument("--history", type=_positive, default=None, help="occ_history window")
    work.add_argument(
        "--set-capacity", type=_positive, default=None, help="set capacity (library default)"
    )
    work.add_argument(
        "--rounds",
        type=_positive,
        default=5,
        help="rounds per strategy; figures show min/median/max over rounds (5)",
    )

    faults = parser.add_argument_group("faults (injected below the SDK's retries)")
    faults.add_argument("--lost-answers", type=_rate, default=0.0, help="lost answer rate")
    faults.add_argument("--throttles", type=_rate, default=0.0, help="throttling rate")
    faults.add_argument("--conflicts", type=_rate, default=0.0, help="transaction conflict rate")
    faults.add_argument(
        "--fault-seed", type=int, default=None, help="the faults' seed (default: --seed)"
    )
    faults.add_argument(
        "--item-write-limit",
        type=_write_limit,
        default=None,
        metavar="R",
        help="throughput model: write units/s per item (AWS-like: per partition), or off (off; "
        f"flash-sale: {FLASH_AWS_LIKE_WRITE_LIMIT:g}, --plain {FLASH_DEFAULTS.item_write_limit:g}; "
        f"api-quota: {QUOTA_AWS_LIKE_WRITE_LIMIT:g} per partition)",
    )
    faults.add_argument(
        "--item-read-limit",
        type=_units,
        default=None,
        metavar="UNITS",
        help="per-item model: read units/s per item (3 x --item-write-limit)",
    )
    faults.add_argument(
        "--aws-like",
        action="store_true",
        help="answer as AWS does (SPEC 11): throttled transactions cancelled, conflicts, one "
        "budget per partition (--item-write-limit R per partition), stale eventually "
        "consistent reads, partial batches (flash-sale, api-quota and checkout: the default)",
    )
    faults.add_argument(
        "--plain",
        action="store_true",
        help="flash-sale: DynamoDB Local with the per-item model only (not AWS-like); "
        "api-quota and checkout: DynamoDB Local as it is",
    )
    faults.add_argument(
        "--partitions",
        type=_positive,
        default=None,
        metavar="P",
        help="AWS-like: keys hashed onto P partitions per table (one per key; a new table: ~4)",
    )
    faults.add_argument(
        "--in-flight",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help=f"AWS-like: how long a write is in flight before it is sent ({AWS_IN_FLIGHT:g})",
    )
    faults.add_argument(
        "--staleness",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help=f"AWS-like: how old an eventually consistent read may be ({AWS_STALENESS:g})",
    )

    flash = parser.add_argument_group("flash-sale scenario")
    flash.add_argument(
        "--stock", type=_positive, default=None, help=f"stock on sale ({FLASH_DEFAULTS.stock})"
    )
    flash.add_argument(
        "--demand", type=_positive, default=None, help="orders of one unit (1.3 x stock)"
    )
    flash.add_argument(
        "--shards",
        type=_shard_counts,
        default=None,
        help="sharded's shard count (the library's default, 8); flash-sale: a list (1,2,4,8)",
    )

    retries = parser.add_argument_group("retries")
    retries.add_argument(
        "--sdk-retry-mode", choices=SDK_RETRY_MODES, default="standard", help="botocore's mode"
    )
    retries.add_argument(
        "--sdk-max-attempts", type=_positive, default=3, help="botocore's max attempts (3)"
    )
    retries.add_argument(
        "--app-retry",
        choices=APP_RETRY_POLICIES,
        default="same-id",
        help="after an error of unknown outcome: send again with the same id, or give up",
    )
    retries.add_argument(
        "--app-retry-limit", type=int, default=3, help="application retries per request (3)"
    )

    where = parser.add_argument_group("backend (default: embedded DynamoDB Local)")
    where.add_argument("--endpoint-url", default=None, help="a DynamoDB endpoint")
    where.add_argument("--region", default=None, help="an AWS region: bench real DynamoDB")
    where.add_argument(
        "--table", default=None, help="table (default: a new dynamodb-counters-bench-<run-id>)"
    )
    where.add_argument(
        "--use-existing-table",
        action="store_true",
        help="let the bench add its counters to a --table that exists (it deletes only those)",
    )
    where.add_argument("--keep-table", action="store_true", help="keep a table the bench created")

    out = parser.add_argument_group("results")
    out.add_argument(
        "--compare-raw",
        action="store_true",
        help="also run plain boto3 update_item ADD calls; print atomic's throughput ratio",
    )
    out.add_argument(
        "--wru-price",
        type=_price,
        default=WRU_PRICE,
        help=f"USD per million write units ({WRU_PRICE})",
    )
    out.add_argument(
        "--rru-price",
        type=_price,
        default=RRU_PRICE,
        help=f"USD per million read units ({RRU_PRICE})",
    )
    out.add_argument("--json", metavar="FILE", default=None, help="write every figure as JSON")
    out.add_argument(
        "--report", metavar="DIR", default=None, help="write a self-contained HTML report"
    )
    _add_output_arguments(parser)


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """Build :class:`BenchOptions` from parsed ``bench`` arguments."""
    for flag, given in (
        ("--stock", args.stock),
        ("--demand", args.demand),
    ):
        if given is not None:
            raise InvalidInput(f"{flag} belongs to --scenario flash-sale")
    if args.shards is not None and len(args.shards) != 1:
        raise InvalidInput(
            "--shards takes one count for the sharded target (a list only with "
            "--scenario flash-sale)"
        )
    if args.plain:
        raise InvalidInput(
            "--plain belongs to --scenario flash-sale (the bench is plain unless --aws-like)"
        )
    _check_aws_flags(args, aws_like=args.aws_like)
    write_limit = None if args.item_write_limit == OFF else args.item_write_limit
    return BenchOptions(
        strategies=tuple(STRATEGIES) if args.strategies is None else args.strategies,
        workers=4 if args.workers is None else args.workers,
        processes=args.processes,
        api="async" if args.use_async else "sync",
        ops=args.ops,
        initial=args.initial,
        floor=args.floor,
        ceiling=args.ceiling,
        mix=Mix(
            increment_share=args.increment_share,
            amount=args.amount,
            duplicate_rate=args.duplicate_rate,
        ),
        faults=FaultPlan(
            lost_answer_rate=args.lost_answers,
            throttle_rate=args.throttles,
            conflict_rate=args.conflicts,
            seed=args.seed if args.fault_seed is None else args.fault_seed,
            item_write_limit=None if args.aws_like else write_limit,
            item_read_limit=None if args.aws_like else args.item_read_limit,
            aws_like=_aws_like_model(args, write_limit) if args.aws_like else None,
        ),
        sdk=SdkRetry(mode=args.sdk_retry_mode, max_attempts=args.sdk_max_attempts),
        app_retry=AppRetry(policy=args.app_retry, limit=args.app_retry_limit),
        compare_raw=args.compare_raw,
        pricing=Pricing(wru=args.wru_price, rru=args.rru_price),
        backend=Backend(
            endpoint_url=args.endpoint_url,
            region=args.region,
            table=args.table,
            keep_table=args.keep_table,
            use_existing_table=args.use_existing_table,
        ),
        seed=args.seed,
        history=args.history,
        set_capacity=args.set_capacity,
        shards=None if args.shards is None else args.shards[0],
        rounds=args.rounds,
    )


#: Bench options that mean nothing to the flash sale: (attribute, flag, default).
_NOT_FLASH = (
    ("strategies", "--strategies", None),
    ("processes", "--processes", False),
    ("use_async", "--async", False),
    ("ops", "--ops", 100),
    ("initial", "--initial", 1000),
    ("floor", "--floor", None),
    ("ceiling", "--ceiling", None),
    ("increment_share", "--increment-share", 0.5),
    ("amount", "--amount", 1),
    ("duplicate_rate", "--duplicate-rate", 0.0),
    ("history", "--history", None),
    ("set_capacity", "--set-capacity", None),
    ("rounds", "--rounds", 5),
    ("lost_answers", "--lost-answers", 0.0),
    ("throttles", "--throttles", 0.0),
    ("conflicts", "--conflicts", 0.0),
    ("fault_seed", "--fault-seed", None),
    ("compare_raw", "--compare-raw", False),
    ("table", "--table", None),
    ("use_existing_table", "--use-existing-table", False),
)


def flash_options_from_args(args: argparse.Namespace) -> FlashSaleOptions:
    """Build :class:`FlashSaleOptions` from parsed ``bench --scenario flash-sale`` arguments."""
    for attribute, flag, default in _NOT_FLASH:
        if getattr(args, attribute) != default:
            raise InvalidInput(
                f"{flag} does not apply to --scenario flash-sale (its targets are atomic, "
                "marker and sharded at --shards; it sells --stock to --demand orders)"
            )
    base = FLASH_DEFAULTS
    _check_aws_flags(args, aws_like=not args.plain)
    return FlashSaleOptions(
        stock=base.stock if args.stock is None else args.stock,
        demand=args.demand,
        workers=base.workers if args.workers is None else args.workers,
        item_write_limit=_flash_write_limit(args.item_write_limit, aws_like=not args.plain),
        item_read_limit=args.item_read_limit,
        shards=base.shards if args.shards is None else args.shards,
        sdk=SdkRetry(mode=args.sdk_retry_mode, max_attempts=args.sdk_max_attempts),
        pricing=Pricing(wru=args.wru_price, rru=args.rru_price),
        backend=Backend(
            endpoint_url=args.endpoint_url, region=args.region, keep_table=args.keep_table
        ),
        seed=args.seed,
        aws_like=not args.plain,
        partitions=args.partitions,
        in_flight=base.in_flight if args.in_flight is None else args.in_flight,
        staleness=base.staleness if args.staleness is None else args.staleness,
    )


def _flash_write_limit(given: float | str | None, *, aws_like: bool) -> float | None:
    if given is None:
        return FLASH_AWS_LIKE_WRITE_LIMIT if aws_like else FLASH_DEFAULTS.item_write_limit
    return None if given == OFF else float(given)


def api_quota_model(args: argparse.Namespace) -> AwsLike | None:
    """``bench --scenario api-quota``'s engine: AWS-like unless ``--plain`` (None then), R per
    partition from ``--item-write-limit`` (default the scenario's own)."""
    _check_aws_flags(args, aws_like=not args.plain)
    if args.plain:
        if args.item_write_limit is not None or args.item_read_limit is not None:
            raise InvalidInput("--item-write-limit / --item-read-limit: api-quota's are AWS-like")
        return None
    given = args.item_write_limit
    limit = QUOTA_AWS_LIKE_WRITE_LIMIT if given is None else None if given == OFF else float(given)
    return _aws_like_model(args, limit)


def run_bench(args: argparse.Namespace) -> int:
    """``dynamodb-counters bench``: returns the exit code."""
    if args.scenario == API_QUOTA:
        from .quota import main as api_quota

        return api_quota(args, api_quota_model(args))
    try:
        check_endpoint(args.endpoint_url)
        if args.scenario == CHECKOUT:
            return run_checkout_cli(args)
        if args.scenario == FLASH_SALE:
            flash = flash_options_from_args(args)
            return _execute_flash(
                flash, json_path=args.json, report_dir=args.report, quiet=args.quiet
            )
        options = options_from_args(args)
    except CounterError as exc:
        return _fail(exc)
    return _execute(options, json_path=args.json, report_dir=args.report, quiet=args.quiet)


def run_checkout_cli(args: argparse.Namespace) -> int:
    """``bench --scenario checkout`` (:mod:`.checkout`): prints the table and verdict, writes
    ``--json``; exit 1 when a target is not exact."""
    from .checkout import CheckoutOptions, render, run_checkout, verdict_ok

    given = [flag for attribute, flag, default in _NOT_FLASH if getattr(args, attribute) != default]
    given += [
        flag
        for flag, value in (
            ("--item-write-limit", args.item_write_limit),
            ("--item-read-limit", args.item_read_limit),
        )
        if value is not None
    ]
    if given or args.report is not None:
        raise InvalidInput(
            f"{(given or ['--report'])[0]} does not apply to --scenario checkout (marker and "
            "sharded at --shards; --stock units, --demand carts)"
        )
    if args.shards is not None and len(args.shards) != 1:
        raise InvalidInput("--scenario checkout takes one --shards count")
    _check_aws_flags(args, aws_like=not args.plain)
    base = CheckoutOptions()
    options = CheckoutOptions(
        stock=base.stock if args.stock is None else args.stock,
        carts=base.carts if args.demand is None else args.demand,
        workers=base.workers if args.workers is None else args.workers,
        shards=base.shards if args.shards is None else args.shards[0],
        seed=args.seed,
        backend=Backend(endpoint_url=args.endpoint_url, region=args.region),
        pricing=Pricing(wru=args.wru_price, rru=args.rru_price),
        aws_like=not args.plain,
        partitions=args.partitions,
        in_flight=base.in_flight if args.in_flight is None else args.in_flight,
        staleness=base.staleness if args.staleness is None else args.staleness,
    )
    _check_writable(args.json, None)
    try:
        results = run_checkout(options)
    except KeyboardInterrupt:
        return _fail("interrupted", code=130)
    if not args.quiet:
        print(render(results))
    if args.json:
        replace_file(Path(args.json), json.dumps(results, indent=2) + "\n")
    return 0 if all(verdict_ok(row) for row in results["targets"]) else 1


def _flash_progress(console: Any) -> Any:
    """A line per finished target of the flash sale, on the progress console."""

    def done(label: str, row: dict[str, Any]) -> None:
        if console is None:
            return
        if row.get("skipped"):
            console.print(f"flash sale: {label} skipped ({row['skipped']})")
        else:
            console.print(
                f"flash sale: {label} sold {row['acknowledged']} in {row['seconds']:.1f} s "
                f"({row['accepted_adds_per_s']:.1f} adds/s, "
                f"{row['throttled_requests']} throttled)"
            )

    return done


def _execute_flash(
    options: FlashSaleOptions, *, json_path: str | None, report_dir: str | None, quiet: bool
) -> int:
    from rich.console import Console

    console = None if quiet else Console(stderr=True)
    try:
        _check_writable(json_path, report_dir)
        results = run_flash_sale(options, done=_flash_progress(console))
    except KeyboardInterrupt:
        return _fail("interrupted", code=130)
    except (CounterError, OSError) as exc:
        return _fail(exc)
    try:
        _finish(results, json_path=json_path, report_dir=report_dir, quiet=quiet, strict=True)
    except OSError as exc:
        return _fail(exc)
    return 0


def add_arguments_demo(parser: argparse.ArgumentParser) -> None:
    """The ``demo`` subcommand's options."""
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=DEMO_DIR,
        help=f"where the report and results.json go (./{DEMO_DIR}/)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of workload and faults (7)")
    _add_output_arguments(parser)


def run_demo(args: argparse.Namespace) -> int:
    """``dynamodb-counters demo``: the bench's preset story, then the flash sale and the
    checkout (on the same engine); returns the exit code."""
    out = Path(args.out)
    return _execute(
        demo_options(seed=args.seed),
        json_path=str(out / "results.json"),
        report_dir=str(out),
        quiet=args.quiet,
        flash=demo_flash_options(seed=args.seed),
        checkout=demo_checkout_options(seed=args.seed),
    )


def _fail(exc: BaseException | str, *, code: int = 1) -> int:
    text = str(exc).strip()
    message = text.splitlines()[0] if text else type(exc).__name__
    print(f"dynamodb-counters: error: {redact(message)}", file=sys.stderr)
    return code


def _run_all(
    options: BenchOptions,
    flash: FlashSaleOptions | None,
    console: Any,
    checkout: CheckoutOptions | None = None,
) -> BenchResults:
    """The bench, then (for the demo) the flash sale and the checkout on the same engine."""
    from .display import run_with_progress

    if flash is None and checkout is None:
        return run_with_progress(options, console=console)
    with open_backend(options) as connection:
        results = run_with_progress(options, console=console, connection=connection)
        if flash is not None:
            # The engine is warm from the bench: no warm-up.
            results["flash_sale"] = FlashSale(
                flash, connection, done=_flash_progress(console), warm_up=False
            ).run()
        if checkout is not None:
            results["checkout"] = checkout_section(
                checkout, connection, done=_checkout_progress(console)
            )
    return results


def _checkout_progress(console: Any) -> Any:
    """A line per finished target of the checkout, on the progress console."""

    def done(label: str, row: dict[str, Any]) -> None:
        if console is not None:
            console.print(
                f"checkout: {row['target']} paid {row['committed']}, {row['returned']} "
                f"abandoned holds back, final {row['final_value']} in {row['seconds']:.1f} s"
            )

    return done


def _execute(
    options: BenchOptions,
    *,
    json_path: str | None,
    report_dir: str | None,
    quiet: bool,
    flash: FlashSaleOptions | None = None,
    checkout: CheckoutOptions | None = None,
) -> int:
    from rich.console import Console

    console = None if quiet else Console(stderr=True)
    try:
        # Find out now, not after minutes of work, that the outputs cannot be written.
        _check_writable(json_path, report_dir)
    except OSError as exc:
        return _fail(exc)

    def finish(results: BenchResults, **how: Any) -> list[str]:
        return _finish(results, json_path=json_path, report_dir=report_dir, quiet=quiet, **how)

    try:
        results = _run_all(options, flash, console, checkout)
    except BenchInterrupted as exc:
        # Keep what finished, within the seconds Ctrl-C allows (a second Ctrl-C just stops).
        notes = finish(exc.results, deadline=exc.at + INTERRUPT_WRITE_BUDGET)
        return _fail("; ".join(["interrupted", *notes]), code=130)
    except KeyboardInterrupt:
        return _fail("interrupted", code=130)
    except BenchFailed as exc:
        notes = finish(exc.results)
        cause = exc.cause.cause if isinstance(exc.cause, BenchAborted) else exc.cause
        if isinstance(cause, CounterError | OSError):
            return _fail("; ".join([str(cause).strip() or type(cause).__name__, *notes]))
        # BotoCoreError / ClientError (no credentials, no region, endpoint down...) reach the
        # command's entry point, which describes them the same way for every subcommand.
        raise cause from None
    except (CounterError, OSError) as exc:
        return _fail(exc)
    try:
        finish(results, strict=True)
    except OSError as exc:
        return _fail(exc)
    return 0


#: After Ctrl-C: seconds (from the interrupt) left to write what finished. The JSON takes
#: nothing; the report is left out if drawing it would take longer (its figures are in the JSON).
INTERRUPT_WRITE_BUDGET = 3.0


def _finish(
    results: BenchResults,
    *,
    json_path: str | None,
    report_dir: str | None,
    quiet: bool,
    strict: bool = False,
    deadline: float | None = None,
) -> list[str]:
    """Write the outputs and print the table. For a run that stopped (``strict`` false), only
    what finished, and a failure to write is not the error to report. Returns notes for the
    error line: what was left undone."""
    from rich.console import Console

    from .display import comparison_line, flash_table, results_table, verdict_block

    run = results.get("run", {})
    notes = []
    if run.get("left_behind"):
        notes.append(
            "not deleted (the endpoint refused or did not answer in time): "
            + ", ".join(run["left_behind"])
        )
    flash = results.get("flash_sale")
    finished = bool(results.get("strategies") or results.get("baseline") or flash)
    written: list[Path] = []
    if finished or strict:
        try:
            written = _write_outputs(
                results, json_path=json_path, report_dir=report_dir, deadline=deadline
            )
        except TimeoutError:  # an OSError: first
            where = f" (the figures are in {json_path})" if json_path else ""
            notes.append(f"no report: no time to draw it{where}")
            written = [Path(json_path)] if json_path else []
        except OSError as exc:
            if strict:
                raise
            notes.append(f"results not written: {exc}")
    if quiet:
        return notes
    out = Console()
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(width=100)
    if results.get("strategies") or results.get("baseline"):
        out.print(results_table(results))
        line = comparison_line(results)
        if line:
            out.print(line)
        out.print(verdict_block(results))
    if flash:
        out.print(flash_table(flash))
    if results.get("checkout"):
        from .checkout import render

        out.print(render(results["checkout"]), markup=False, highlight=False)
    if results.get("partial"):
        done = ", ".join(run.get("finished_targets", [])) or "none"
        out.print(f"partial results: the run stopped ({run.get('stopped_by')}); finished: {done}")
    elif notes:
        out.print("; ".join(notes))
    for path in written:
        out.print(f"wrote {path}")
    return notes


def _check_writable(json_path: str | None, report_dir: str | None) -> None:
    folders = [Path(json_path).parent] if json_path else []
    folders += [Path(report_dir)] if report_dir else []
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"cannot write to {folder}")
    if json_path and Path(json_path).is_dir():
        raise IsADirectoryError(f"--json {json_path} is a folder, not a file")


def _write_outputs(
    results: BenchResults,
    *,
    json_path: str | None,
    report_dir: str | None,
    deadline: float | None = None,
) -> list[Path]:
    """Write the JSON, then the report; with ``deadline`` (``time.monotonic()``), raise
    TimeoutError instead of waiting longer for the report to be drawn."""
    written = []
    if json_path:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Replaced, never written through: a symlink at the path is not followed.
        replace_file(path, json.dumps(results, indent=2, sort_keys=False) + "\n")
        written.append(path)
    if report_dir:
        from ..report import REPORT_FILE, render_html

        page = _drawn(render_html, results, deadline)
        folder = Path(report_dir)
        folder.mkdir(parents=True, exist_ok=True)
        written.append(replace_file(folder / REPORT_FILE, page))
    return written


class _OutOfTime(BaseException):
    pass


def _drawn(render: Any, results: BenchResults, deadline: float | None) -> str:
    """``render(results)``; with ``deadline``, TimeoutError once it passes. An alarm stops
    the drawing in the main thread itself: a drawing left running in another thread would
    slow the way out as much as waiting for it."""
    if deadline is None:
        return str(render(results))
    remaining = deadline - time.monotonic()
    alarm = getattr(signal, "SIGALRM", None)
    if remaining <= 0 or alarm is None or threading.current_thread() is not threading.main_thread():
        raise TimeoutError("no time left to draw the report")

    def expire(signum: int, frame: object) -> None:
        raise _OutOfTime  # not an Exception: no ``except Exception`` in a library swallows it

    previous = signal.signal(alarm, expire)
    signal.setitimer(signal.ITIMER_REAL, remaining)
    try:
        return str(render(results))
    except _OutOfTime:
        raise TimeoutError("the report was not drawn in time") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(alarm, previous)
