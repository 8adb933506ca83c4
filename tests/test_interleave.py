# mypy: disable-error-code="arg-type"
# (strategy ids come from parameter lists as plain str, and bad input is passed on purpose)
"""Interleaving harness: a second operation at every DynamoDB call boundary of a first one.

For each strategy, both table layouts and each pair of operations on one counter, operation A
runs on a client of its own; a ``before-send`` handler below botocore's retries counts A's
requests and, at request k, runs operation B to completion on another client -- either just
before A's request k is sent, or after it was sent and applied but its answer lost (then
botocore re-sends it, as on a real network). What A and B answered and the state the counter
is left in (its value, and a replay of every acknowledged request id) must match one
linearization of the two operations under a sequential model of the strategy's documented
semantics (:class:`Model`):

* A then B, or B then A;
* after a lost answer, also A, B, A again -- but only where B ended A's window on purpose (a
  compaction that folded A's delta, a delete and create that started a new incarnation);
  other writers pushing A's evidence out of a window must not make A count twice;
* or, after a lost answer, A raises the original botocore error (outcome unknown), with the
  state matching A applied or not.

Windows are set small (``history=1``, ``capacity=1``) so that two other adds push an id out.
The default run takes a deterministic sample of the pairs; ``EXHAUSTIVE=1`` runs them all.

Besides (issue 18), cases of three shapes that another process alone never produces:

* **one handle shared**: B runs on A's own handle, from another thread (sync) or task (async),
  and A's lost answer is lost for good (botocore's re-sends never arrive), so the library's
  own retry of A is what must find out -- with whatever B taught the shared handle;
* **a re-sent create**: A deletes and creates the counter, B adds and deletes it while A's
  create has lost its answer; botocore's re-send must not bring B's deleted counter back;
* **sharded's steal path**: A's shard is dry and the donor alone takes the add (``steal``);
  B deletes and creates the counter again between A's survey and A's write.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from _hooks import SendHook
from conftest import ALL, AWS_LIKE, IDEMPOTENT, fresh_client, new_table_name, store_on
from dynamodb_counters import (
    STRATEGIES,
    Counter,
    CounterError,
    CounterStore,
)
from dynamodb_counters.aws_like import AwsLikeState
from dynamodb_counters.faults import FaultInjector, FaultPlan
from dynamodb_counters.local import DynamoDBLocal
from dynamodb_counters.strategies.sharded import ShardedCounter

FLOOR, CEILING, INITIAL = 0, 40, 5
WINDOWS: dict[str, dict[str, int]] = {
    "occ_history": {"history": 1},
    "set": {"capacity": 1},
    # Two shards (floor shares 0 and 0): the steal path is set up by hand (``steal``).
    "sharded": {"shards": 2},
}
#: botocore's re-sends of one request (``max_attempts`` 3 in the tests' clients: retries).
RESENDS = 3
#: ``steal``'s amount: from shards [0, 7] (its own dry) the donor gives exactly this much.
STEAL = 4
EXHAUSTIVE = bool(os.environ.get("EXHAUSTIVE"))

Outcome = tuple[
    str, Any
]  # ("applied", True/False/None) | ("value", int) | ("error", name) | ("ok", None)


# -- the sequential model ---------------------------------------------------------------------


@dataclass
class Model:
    """One counter under a strategy's documented semantics (what a sequential history does)."""

    strategy: str
    exists: bool = True
    value: int = INITIAL
    known: dict[str, int] = field(default_factory=dict)  # ids in the window, oldest first
    previous: dict[str, int] = field(default_factory=dict)  # set: the previous generation

    def copy(self) -> Model:
        return replace(self, known=dict(self.known), previous=dict(self.previous))

    @property
    def bounded(self) -> bool:
        return STRATEGIES[self.strategy].supports_thresholds

    def add(self, amount: int, request_id: str | None) -> Outcome:
        if not self.exists:
            return ("error", "CounterNotFound")
        seen = self.known.get(request_id) if request_id else None
        if request_id and seen is None:
            seen = self.previous.get(request_id)
        if seen is not None:
            if seen != amount and self.strategy != "set":
                return ("error", "RequestIdMismatch")
            return ("applied", False)
        new = self.value + amount
        if self.bounded and not FLOOR <= new <= CEILING:
            return ("error", "ThresholdExceeded")
        self.value = new
        if request_id:
            if self.strategy == "set" and len(self.known) >= WINDOWS["set"]["capacity"]:
                self.previous, self.known = self.known, {}
            self.known[request_id] = amount
            if self.strategy == "occ_history":
                while len(self.known) > WINDOWS["occ_history"]["history"]:
                    del self.known[next(iter(self.known))]
        return ("applied", True)

    def create(self, initial: int) -> Outcome:
        if self.exists:
            return ("error", "CounterExists")
        self.exists, self.value, self.known, self.previous = True, initial, {}, {}
        return ("ok", None)

    def delete(self) -> Outcome:
        if not self.exists:
            return ("error", "CounterNotFound")
        self.exists, self.known, self.previous = False, {}, {}
        return ("ok", None)

    def read(self) -> Outcome:
        return ("value", self.value) if self.exists else ("error", "CounterNotFound")

    def compact(self) -> Outcome:
        if not self.exists:
            return ("error", "CounterNotFound")
        self.known = {}  # folded: the end of the deltas' window
        return ("ok", None)


# -- operations: each runs on a handle and on the model, step by step -------------------------

Step = tuple[str, tuple[Any, ...]]  # ("add", (amount, id)) | ("create", (initial,)) | ...

OPS: dict[str, list[Step]] = {
    "add": [("add", (1, "r1"))],
    "replay": [("add", (2, "r0"))],
    "other_amount": [("add", (3, "r0"))],
    "value": [("read", ())],
    "compact": [("compact", ())],
    "delete": [("delete", ())],
    "create": [("create", (7,))],
    # Compound second operations: another writer's whole story.
    "create_add": [("create", (7,)), ("add", (5, "r5"))],
    "two_adds": [("add", (1, "r2")), ("add", (1, "r3"))],
    "compact_replay": [("compact", ()), ("add", (7, "r0"))],
    # Issue 18: a compaction, then an add that teaches a shared handle the new fold count.
    "compact_add": [("compact", ()), ("add", (1, "r2"))],
    # A re-sent create: A deletes and creates; B adds and deletes while A's answer is lost.
    "recreate": [("delete", ()), ("create", (7,))],
    "add_delete": [("add", (1, "r1")), ("delete", ())],
    # sharded: A's shard is dry, the donor alone takes the add; B re-creates the counter (its
    # new shards have room for the donor's share, so only the incarnation can refuse it).
    "steal": [("add", (-STEAL, "r6"))],
    "recreate_roomy": [("delete", ()), ("create", (9,))],
}
FIRST = ["add", "replay", "other_amount", "value", "compact", "delete", "create"]
SECOND = ["add", "replay", "value", "compact", "delete", "create_add", "two_adds", "compact_replay"]
# Second operations that end a first add's window on purpose (not by pushing it out).
ENDS_WINDOW = {"compact", "compact_replay", "delete", "create_add", "recreate_roomy"}


def usable(strategy: str, op: str) -> bool:
    steps = OPS[op]
    if op == "steal" and strategy != "sharded":
        return False
    if any(kind == "compact" for kind, _ in steps) and strategy != "collection":
        return False
    if not STRATEGIES[strategy].idempotent:
        # No request ids: replays mean nothing; adds go without an id.
        return op not in ("replay", "other_amount", "compact_replay")
    return True


def run_on_model(model: Model, op: str, part: slice = slice(None)) -> list[Outcome]:
    """Run ``op`` (its steps ``part`` only) on ``model``."""
    out: list[Outcome] = []
    for kind, args in OPS[op][part]:
        if kind == "add":
            amount, request_id = args
            out.append(model.add(amount, request_id if model_idempotent(model) else None))
        else:
            out.append(getattr(model, kind)(*args))
    return out


def model_idempotent(model: Model) -> bool:
    return STRATEGIES[model.strategy].idempotent


def run_on_counter(counter: Counter, strategy: str, op: str) -> list[Outcome]:
    out: list[Outcome] = []
    for kind, args in OPS[op]:
        try:
            if kind == "add":
                amount, request_id = args
                ids = STRATEGIES[strategy].idempotent
                result = counter.add(amount, request_id=request_id if ids else None)
                out.append(("applied", result.applied))
            elif kind == "read":
                out.append(("value", counter.value()))
            elif kind == "create":
                counter.create(initial=args[0])
                out.append(("ok", None))
            elif kind == "compact":
                counter.compact()
                out.append(("ok", None))
            else:
                counter.delete()
                out.append(("ok", None))
        except CounterError as exc:
            out.append(("error", type(exc).__name__))
    return out


# -- matching observations against linearizations ---------------------------------------------


def same(strategy: str, seen: list[Outcome], expected: list[Outcome], *, lenient: bool) -> bool:
    if len(seen) != len(expected):
        return False
    for (kind, got), (want_kind, want) in zip(seen, expected, strict=True):
        if kind != want_kind:
            return False
        if kind == "applied" and got != want:
            # transaction cannot tell on DynamoDB Local; after a lost answer a call may find
            # its own write (True) or not know whose it is (None).
            if strategy == "transaction" and got is None:
                continue
            if lenient and (got is None or got is True):
                continue
            return False
        if kind != "applied" and got != want:
            return False
    return True


@dataclass
class Observation:
    first: list[Outcome] | BaseException
    second: list[Outcome]
    final: Outcome
    # Replays the request id with its amount; "tainted" once a replay counted (it changed the
    # counter, so later probes prove nothing).
    probe: Callable[[str, int], Outcome] = lambda rid, amount: ("missing", None)


def explanations(
    strategy: str, first: str, second: str, lost: bool
) -> Iterator[tuple[str, list[Outcome] | None, list[Outcome], Model]]:
    """Every legal history: (name, A's outcomes or None for "unknown", B's, final model)."""
    start = base_model(strategy)
    m = start.copy()
    a = run_on_model(m, first)
    b = run_on_model(m, second)
    yield "A;B", a, b, m
    m = start.copy()
    b = run_on_model(m, second)
    a = run_on_model(m, first)
    yield "B;A", a, b, m
    # A compound first operation (``recreate``): B may come between its steps.
    for k in range(1, len(OPS[first])):
        m = start.copy()
        a = run_on_model(m, first, slice(k))
        b = run_on_model(m, second)
        a += run_on_model(m, first, slice(k, None))
        yield f"A[:{k}];B;A[{k}:]", a, b, m
    if lost:
        if second in ENDS_WINDOW:
            m = start.copy()
            run_on_model(m, first)
            b = run_on_model(m, second)
            a = run_on_model(m, first)
            yield "A;B;A", a, b, m
        # A raised its original error: applied (before or after B) or not at all.
        for name, _, b_, m_ in list(explanations(strategy, first, second, False)):
            yield f"unknown({name})", None, b_, m_
        m = start.copy()
        b = run_on_model(m, second)
        yield "unknown(B only)", None, b, m


def base_model(strategy: str) -> Model:
    m = Model(strategy)
    m.add(2, "r0" if STRATEGIES[strategy].idempotent else None)
    return m


def check(strategy: str, first: str, second: str, lost: bool, seen: Observation) -> str | None:
    """None when the observation matches a legal history, else a description.

    A, B and the final value must match one history; then every request id that all matching
    histories remember must be a duplicate when replayed (replays of ids only some histories
    remember could count and change the counter, so they are not probed).
    """
    finals: list[Model] = []
    for _, a, b, final in explanations(strategy, first, second, lost):
        if a is None:
            if not isinstance(seen.first, BotoCoreError):
                continue
        elif isinstance(seen.first, BaseException) or not same(
            strategy, seen.first, a, lenient=lost
        ):
            continue
        if same(strategy, seen.second, b, lenient=False) and seen.final == final.read():
            finals.append(final)
    if not finals:
        return f"A={seen.first!r} B={seen.second!r} final={seen.final!r}: no linearization"
    remembered = set.intersection(
        *({*m.previous.items(), *m.known.items()} if m.exists else set() for m in finals)
    )
    for rid, amount in sorted(remembered):
        answer = seen.probe(rid, amount)
        if not same(strategy, [answer], [("applied", False)], lenient=False):
            return f"A={seen.first!r} B={seen.second!r}: replay of {rid} answered {answer}"
    return None


# -- running one scenario ---------------------------------------------------------------------


class Interleaver(SendHook):
    """At A's request number ``at``, run B (before it is sent, or after a lost answer).

    ``for_good``: botocore's re-sends of the lost request never arrive either (botocore gives
    up, and the library's own retry must find out)."""

    def __init__(
        self,
        client: Any,
        at: int,
        lost: bool,
        run_b: Callable[[], None],
        *,
        for_good: bool = False,
    ) -> None:
        self.client, self.at, self.lost, self.run_b = client, at, lost, run_b
        self.for_good = for_good
        self.seen = 0
        self.fired = False
        self._lost_body: bytes | None = None
        self._resends = 0
        self._http = URLLib3Session()

    def _hook(self, request: Any, **_: Any) -> Any:
        if (
            self._lost_body is not None
            and request.body == self._lost_body
            and self._resends < RESENDS
        ):
            self._resends += 1  # botocore's re-send of the request lost for good: lost too
            raise ReadTimeoutError(endpoint_url=request.url)
        self.seen += 1
        if self.seen != self.at or self.fired:
            return None
        self.fired = True
        if self.lost and self.for_good:
            self._lost_body = request.body
        if not self.lost:
            self.run_b()
            return None
        self._http.send(request)  # the server applies it...
        self.run_b()  # ...another caller acts...
        raise ReadTimeoutError(endpoint_url=request.url)  # ...and the answer is lost


def scenario(
    ddb: DynamoDBLocal,
    table: str,
    sort_key: str | None,
    strategy: str,
    first: str,
    second: str,
    at: int,
    lost: bool,
    api: str = "sync",
    shared: bool = False,
    engine: str = "plain",
) -> tuple[Observation, int]:
    """Run one scenario; returns what was observed and how many requests A made. ``api``: the
    API A uses (B, the setup and the probe always use the sync one, unless ``shared``: then B
    uses A's own handle, from another thread or task, and A's lost answer is lost for good)."""
    name = f"c-{random.getrandbits(48):x}"
    kw: dict[str, Any] = dict(WINDOWS.get(strategy, {}))
    if STRATEGIES[strategy].supports_thresholds:
        kw.update(floor=FLOOR, ceiling=CEILING)
    aws = "-aws" if engine == "aws-like" else ""
    client_b = CLIENTS["b" + aws]
    store_b = CounterStore(client_b, table, sort_key=sort_key)
    setup = store_b.counter(name, strategy=strategy, **kw)
    setup.create(initial=INITIAL)
    setup.add(2, request_id="r0" if STRATEGIES[strategy].idempotent else None)
    if first == "steal":
        dry_for(setup, client_b, "r6")
    client_a = CLIENTS["a" + aws if api == "sync" else "a-async"]
    # A opens the counter the way a second process would: a store of its own, first use.
    store_a = store_on(client_a, table, sort_key=sort_key)
    handle_a = store_a.counter(name, strategy=strategy, **kw)
    second_out: list[Outcome] = []

    def run_b() -> None:
        second_out.extend(
            run_on_counter(store_b.counter(name, strategy=strategy, **kw), strategy, second)
        )

    if shared:
        # The handle is in use already (threads that share one do not all start at once).
        handle_a.definition  # noqa: B018

        def run_b_on_the_shared_handle() -> None:
            if api == "async":  # another task on the application's loop
                second_out.extend(run_on_counter(handle_a, strategy, second))
                return
            thread = threading.Thread(
                target=lambda: second_out.extend(run_on_counter(handle_a, strategy, second))
            )
            thread.start()
            thread.join(timeout=60)
            assert not thread.is_alive(), "B never finished on the shared handle"

        run_b = run_b_on_the_shared_handle

    with Interleaver(client_a, at, lost, run_b, for_good=shared) as hook:
        first_out: list[Outcome] | BaseException
        try:
            first_out = run_on_counter(handle_a, strategy, first)
        except BotoCoreError as exc:
            first_out = exc
        fired, requests = hook.fired, hook.seen
    if not fired:
        return Observation([], [], ("none", None)), requests
    probe = CounterStore(client_b, table, sort_key=sort_key).counter(name)
    try:
        final: Outcome = ("value", probe.value())
    except CounterError as exc:
        final = ("error", type(exc).__name__)
    probed: dict[str, Outcome] = {}
    tainted = False

    def probe_replay(rid: str, amount: int) -> Outcome:
        nonlocal tainted
        if rid not in probed:
            if tainted:
                return ("tainted", None)
            try:
                applied = probe.add(amount, request_id=rid).applied
                # What the value says beats what ``applied`` says (transaction: None).
                if probe.value() != final[1]:
                    applied, tainted = True, True
                probed[rid] = ("applied", applied)
            except CounterError as exc:
                probed[rid] = ("error", type(exc).__name__)
        return probed[rid]

    return Observation(first_out, second_out, final, probe_replay), requests


def dry_for(handle: Counter, client: Any, request_id: str) -> None:
    """Leave the shard of ``request_id``'s add empty and the other holding the whole value
    (shards [0, 7]): a ``steal`` of that id takes its amount from the donor alone."""
    strategy = handle._current()
    assert isinstance(strategy, ShardedCounter) and strategy.shards == 2
    dry = strategy.shard_of(request_id)
    total = handle.value()
    for shard in range(2):
        client.update_item(
            TableName=strategy.layout.table,
            Key=strategy.layout.shard_key(strategy.counter_name, shard),
            UpdateExpression="SET #v = :v",
            ExpressionAttributeNames={"#v": strategy.layout.value_attribute},
            ExpressionAttributeValues={":v": {"N": str(0 if shard == dry else total)}},
        )


CLIENTS: dict[str, Any] = {}


@pytest.fixture(scope="module")
def clients(ddb: DynamoDBLocal) -> Iterator[None]:
    CLIENTS["a"] = fresh_client(ddb, retries={"mode": "standard", "max_attempts": 3})
    CLIENTS["b"] = fresh_client(ddb, retries={"mode": "standard", "max_attempts": 3})
    CLIENTS["a-async"] = fresh_client(ddb, "async", retries={"mode": "standard", "max_attempts": 3})
    # AWS-like: A and B share one engine state (partitions, writes in flight, versions).
    state = AwsLikeState(AWS_LIKE)
    for who in ("a", "b"):
        CLIENTS[who + "-aws"] = fresh_client(ddb, retries={"mode": "standard", "max_attempts": 3})
        FaultInjector(CLIENTS[who + "-aws"], FaultPlan(aws_like=AWS_LIKE), aws_state=state).attach()
    yield
    CLIENTS.clear()


@pytest.fixture(scope="module")
def tables(ddb: DynamoDBLocal, clients: None) -> Iterator[dict[str, str]]:
    made = {}
    for layout, sort_key in (("sk", "sk"), ("pk", None)):
        name = new_table_name("il")
        CounterStore(CLIENTS["b"], name, sort_key=sort_key).ensure_table()
        made[layout] = name
    yield made
    for name in made.values():
        CLIENTS["b"].delete_table(TableName=name)


# Pairs of the shapes the issue found by hand (delete vs create, compactions, a window pushed
# under a lost answer, a value read during a compaction): always in the default run.
CRITICAL = {
    ("delete", "create_add"),
    ("compact", "compact_replay"),
    ("value", "compact"),
    ("add", "two_adds"),
    ("add", "delete"),
    ("add", "create_add"),
}


def cases() -> list[Any]:
    everything = [
        (strategy, layout, first, second, lost)
        for strategy, layout, first, second, lost in itertools.product(
            ALL, ("sk", "pk"), FIRST, SECOND, (False, True)
        )
        if usable(strategy, first)
        and usable(strategy, second)
        and not (layout == "pk" and strategy == "collection")
        and not (lost and strategy not in IDEMPOTENT)
    ]
    if not EXHAUSTIVE:
        # The critical pairs for the table with a sort key (partition-key-only: the delete and
        # create ones), and a fixed sample of the rest: about a tenth of all cases.
        rng = random.Random(7)
        everything = [
            c
            for c in everything
            if ((c[2], c[3]) in CRITICAL and (c[1] == "sk" or "delete" in c[2:4]))
            or rng.random() < 0.02
        ]
    params = [pytest.param(*c, "sync", id="-".join(str(x) for x in c)) for c in everything]
    # A through the async API: the critical pairs under a lost answer (all of them with
    # EXHAUSTIVE=1, else a fixed sample of eight): the same steps, another executor.
    critical = [c for c in everything if (c[2], c[3]) in CRITICAL and c[1] == "sk" and c[4]]
    if not EXHAUSTIVE:
        critical = random.Random(11).sample(critical, min(8, len(critical)))
    params += [pytest.param(*c, "async", id="-".join(map(str, (*c, "async")))) for c in critical]
    params = [pytest.param(*p.values, "plain", id=p.id) for p in params]
    # AWS-like (sync): a fixed sample of the critical pairs of the strategies that write with
    # transactions or several items.
    aws = [
        c
        for c in everything
        if (c[2], c[3]) in CRITICAL and c[1] == "sk" and c[0] in ("marker", "sharded", "collection")
    ]
    if not EXHAUSTIVE:
        aws = random.Random(13).sample(aws, min(6, len(aws)))
    params += [
        pytest.param(*c, "sync", "aws-like", id="-".join(map(str, (*c, "aws-like")))) for c in aws
    ]
    return params


#: Issue 18's shapes (see the module docstring), sync and async: (strategy, layout, first,
#: second, lost, shared).
NEW_SHAPES = [
    # One handle shared: B moves what the handle knows while A's answer is lost for good.
    ("set", "sk", "add", "two_adds", True, True),
    ("collection", "sk", "add", "compact_add", True, True),
    ("occ_history", "sk", "add", "two_adds", True, True),
    ("marker", "sk", "add", "two_adds", True, True),
    # A re-sent create after B added and deleted the counter.
    ("marker", "pk", "recreate", "add_delete", True, False),
    ("transaction", "sk", "recreate", "add_delete", True, False),
    ("transaction", "pk", "recreate", "add_delete", True, False),
    # sharded: the steal path, B re-creating the counter between A's survey and A's write.
    ("sharded", "sk", "steal", "recreate_roomy", False, False),
    ("sharded", "sk", "steal", "recreate_roomy", True, False),
]


def new_shape_cases() -> list[Any]:
    return [
        pytest.param(*c, api, id="-".join(map(str, (*c[:5], "shared" if c[5] else "", api))))
        for c in NEW_SHAPES
        for api in ("sync", "async")
    ]


@pytest.mark.parametrize(
    ("strategy", "layout", "first", "second", "lost", "api", "engine"), cases()
)
def test_interleaving(
    ddb: DynamoDBLocal,
    tables: dict[str, str],
    strategy: str,
    layout: str,
    first: str,
    second: str,
    lost: bool,
    api: str,
    engine: str,
) -> None:
    interleave(ddb, tables, strategy, layout, first, second, lost, api, shared=False, engine=engine)


@pytest.mark.parametrize(
    ("strategy", "layout", "first", "second", "lost", "shared", "api"), new_shape_cases()
)
def test_interleaving_new_shapes(
    ddb: DynamoDBLocal,
    tables: dict[str, str],
    strategy: str,
    layout: str,
    first: str,
    second: str,
    lost: bool,
    shared: bool,
    api: str,
) -> None:
    interleave(ddb, tables, strategy, layout, first, second, lost, api, shared=shared)


def interleave(
    ddb: DynamoDBLocal,
    tables: dict[str, str],
    strategy: str,
    layout: str,
    first: str,
    second: str,
    lost: bool,
    api: str,
    *,
    shared: bool,
    engine: str = "plain",
) -> None:
    """B at every request boundary of A: each observation must match a legal history."""
    sort_key = "sk" if layout == "sk" else None
    failures = []
    at = 1
    while True:
        seen, _ = scenario(
            ddb, tables[layout], sort_key, strategy, first, second, at, lost, api, shared, engine
        )
        if seen.final == ("none", None):
            break  # A made fewer requests than ``at``: every boundary was tried
        problem = check(strategy, first, second, lost, seen)
        if problem:
            failures.append(f"at request {at}: {problem}")
        at += 1
    assert failures == []


# -- holds (SPEC section 13): hold operations at every call boundary of another ---------------
#
# A counter of 4 with hold h0 of 2 (value 2), live or expired (the clock moved past it). A runs
# one hold operation, B another at each of A's request boundaries, with and without A's answer
# lost. What they answered, the value and the live holds must be those of A then B or B then A
# under :class:`HoldModel`; a lost answer is re-sent (botocore) or retried (the library), so A
# still answers as one operation.

HOLD_OPS = {
    "reserve_h1": ("reserve", "h1", 3),  # refused unless h0 expired (then reclaimed first)
    "reserve_h0": ("reserve", "h0", 2),  # the hold's reserve sent again
    "commit_h0": ("commit", "h0", 0),
    "cancel_h0": ("cancel", "h0", 0),
    "reclaim": ("reclaim", "", 0),
}
HOLD_FIRST = ["reserve_h1", "reserve_h0", "commit_h0", "cancel_h0", "reclaim"]
HOLD_SECOND = ["reserve_h1", "commit_h0", "cancel_h0", "reclaim"]


@dataclass
class HoldModel:
    """A counter with holds, sequentially (SPEC section 13)."""

    value: int = 2
    live: dict[str, tuple[int, bool]] = field(default_factory=lambda: {"h0": (2, False)})
    ended: dict[str, str] = field(default_factory=dict)

    def copy(self) -> HoldModel:
        return replace(self, live=dict(self.live), ended=dict(self.ended))

    def run(self, op: str) -> Outcome:
        kind, hold_id, amount = HOLD_OPS[op]
        if kind == "reclaim":
            return ("count", self.reclaim())
        if kind == "reserve":
            if hold_id in self.live or hold_id in self.ended:
                return ("hold", amount)
            if self.value < amount:
                self.reclaim()  # a refusal reclaims expired holds and tries once more
            if self.value < amount:
                return ("error", "ThresholdExceeded")
            self.value -= amount
            self.live[hold_id] = (amount, False)
            return ("hold", amount)
        if hold_id in self.live:
            held, expired = self.live.pop(hold_id)
            how = "expired" if expired else ("committed" if kind == "commit" else "cancelled")
            self.ended[hold_id] = how
            if how != "committed":
                self.value += held
        ending = self.ended.get(hold_id)
        if kind == "commit":
            if ending == "committed":
                return ("ok", None)
            return ("error", "HoldExpired" if ending == "expired" else "HoldNotFound")
        return ("ok", None) if ending in ("cancelled", "expired") else ("error", "HoldNotFound")

    def reclaim(self) -> int:
        expired = [h for h, (_, gone) in self.live.items() if gone]
        for hold_id in expired:
            self.value += self.live.pop(hold_id)[0]
            self.ended[hold_id] = "expired"
        return len(expired)

    def final(self) -> tuple[int, list[str]]:
        return self.value, sorted(self.live)


def run_hold_op(counter: Counter, op: str) -> Outcome:
    kind, hold_id, amount = HOLD_OPS[op]
    try:
        if kind == "reserve":
            return ("hold", counter.reserve(amount, hold_id=hold_id, ttl=60).amount)
        if kind == "reclaim":
            return ("count", counter.reclaim())
        getattr(counter, kind)(hold_id)
        return ("ok", None)
    except CounterError as exc:
        return ("error", type(exc).__name__)


def hold_cases() -> list[Any]:
    everything = list(
        itertools.product(
            ("marker", "sharded"), HOLD_FIRST, HOLD_SECOND, (False, True), (False, True)
        )
    )
    if not EXHAUSTIVE:
        # Every pair on marker under a lost answer (B then runs between two of A's
        # requests, and A's request is sent again), a fixed quarter of them without; on
        # sharded (the same steps, more requests), the pairs that end an expired h0, lost.
        rng = random.Random(21)
        everything = [
            c
            for c in everything
            if (c[0] == "marker" and (c[4] or rng.random() < 0.25))
            or (c[3] and c[4] and c[1] != "reserve_h1" and c[2] != "reserve_h1")
        ]
    params = [pytest.param(*c, "plain", id="-".join(map(str, c))) for c in everything]
    # AWS-like (SPEC section 11): A and B share one engine state, so B's transactions conflict
    # with A's in flight and stale reads answer A's surveys; a fixed sample of the pairs that
    # end an expired or a live h0 under a lost answer, three on each strategy.
    aws = []
    for strategy in ("marker", "sharded"):
        pairs = [
            c
            for c in everything
            if c[0] == strategy
            and c[4]
            and c[1] in ("commit_h0", "cancel_h0", "reclaim", "reserve_h1")
            and c[2] in ("commit_h0", "cancel_h0", "reclaim")
        ]
        aws += pairs if EXHAUSTIVE else random.Random(23).sample(pairs, min(3, len(pairs)))
    params += [pytest.param(*c, "aws-like", id="-".join(map(str, (*c, "aws-like")))) for c in aws]
    return params


@pytest.mark.parametrize(("strategy", "first", "second", "expired", "lost", "engine"), hold_cases())
def test_hold_interleaving(
    tables: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    strategy: str,
    first: str,
    second: str,
    expired: bool,
    lost: bool,
    engine: str,
) -> None:
    from dynamodb_counters import _steps

    aws = "-aws" if engine == "aws-like" else ""
    client_a, client_b = CLIENTS["a" + aws], CLIENTS["b" + aws]
    now = [1_900_000_000.0]
    monkeypatch.setattr(_steps, "wall_clock", lambda: now[0])
    start = HoldModel(live={"h0": (2, expired)})
    # A then B, or B then A: (A's answer, B's answer, the final value and live holds).
    a_b, b_a = _pair(start, first, second), _pair(start, second, first)
    legal = [(a_b[0], a_b[1], a_b[2]), (b_a[1], b_a[0], b_a[2])]
    options = {"shards": 2} if strategy == "sharded" else {}
    failures = []
    at = 1
    while True:
        name = f"h-{random.getrandbits(48):x}"
        store_b = CounterStore(client_b, tables["sk"])
        setup = store_b.counter(name, strategy=strategy, floor=0, **options)
        setup.create(initial=4)
        setup.reserve(2, hold_id="h0", ttl=60)
        now[0] += 60 if expired else 0
        handle_a = CounterStore(client_a, tables["sk"]).counter(name)
        seen_b: list[Outcome] = []
        with Interleaver(
            client_a,
            at,
            lost,
            functools.partial(_run_b, store_b, name, second, seen_b),
        ) as hook:
            seen_a = run_hold_op(handle_a, first)
            fired = hook.fired
        now[0] -= 60 if expired else 0
        if not fired:
            break
        probe = store_b.counter(name)
        final = (probe.value(), sorted(h.hold_id for h in probe.holds()))
        if (seen_a, *seen_b, final) not in legal:
            failures.append(
                f"at request {at}{' (lost)' if lost else ''}: A={seen_a} B={seen_b} final={final}"
            )
        at += 1
    assert failures == []


def _run_b(store: CounterStore, name: str, op: str, seen: list[Outcome]) -> None:
    seen.append(run_hold_op(store.counter(name), op))


def _pair(start: HoldModel, x: str, y: str) -> tuple[Outcome, Outcome, tuple[int, list[str]]]:
    """x then y from ``start``: x's answer, y's, and the final value and live holds."""
    model = start.copy()
    x_out = model.run(x)
    return x_out, model.run(y), model.final()
