"""``create(initial, exist_ok=True)``: get-or-create on every strategy, sync and async.

Exactly one of many racing callers creates (and hears True); the others get the counter that is
there (False), whose stored definition must match what they state (else DefinitionMismatch);
the creating call still hears True when its answer was lost and botocore's re-send found its
own item. Lost answers are forced below botocore (a hook that sends the request, lets another
caller run, then raises ReadTimeoutError), never by chance.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session

from _hooks import SendHook, operation_of
from conftest import ALL, THRESHOLDS, fresh_client, store_on
from dynamodb_counters import CounterExists, CounterStore, DefinitionMismatch
from dynamodb_counters.local import DynamoDBLocal

# What each strategy's create sends: a conditional put, or (sharded) one transaction.
CREATES = frozenset({"PutItem", "TransactWriteItems"})


# Every strategy through the sync API; through the async API those whose create differs (a put,
# a put with side attributes, sharded's transaction): the steps are the same for both.
CASES = [("sync", s) for s in ALL] + [("async", s) for s in ("atomic", "occ", "sharded")]


@pytest.mark.parametrize(("api", "strategy"), CASES)
def test_get_or_create_on_every_strategy(
    api: str, client: Any, table: str, strategy: Any, request: pytest.FixtureRequest
) -> None:
    chosen = client if api == "sync" else request.getfixturevalue("async_client")
    bounds = {"floor": 0} if strategy in THRESHOLDS else {}
    first = store_on(chosen, table).counter("stock", strategy=strategy, **bounds)
    assert first.create(initial=5, exist_ok=True) is True
    # Another store (another process): gets the existing counter, its value untouched.
    again = store_on(chosen, table).counter("stock", strategy=strategy)
    assert again.create(initial=9, exist_ok=True) is False
    assert again.value() == 5
    assert again.definition.floor == bounds.get("floor")  # the stored one
    with pytest.raises(CounterExists):
        again.create(initial=5)
    other: Any = "atomic" if strategy != "atomic" else "marker"
    with pytest.raises(DefinitionMismatch):
        store_on(chosen, table).counter("stock", strategy=other).create(exist_ok=True)
    if bounds:
        with pytest.raises(DefinitionMismatch):
            store_on(chosen, table).counter("stock", floor=1).create(initial=5, exist_ok=True)
    assert store_on(chosen, table).counter("new", strategy=strategy).create() is True


class LoseCreate(SendHook):
    """The first create request reaches the table; ``meanwhile`` runs (another process's
    get-or-create); then the answer is lost and botocore re-sends it."""

    def __init__(self, client: Any, meanwhile: Any) -> None:
        self.client, self.meanwhile, self.fired = client, meanwhile, False
        self._http = URLLib3Session()

    def _hook(self, request: Any, **_: Any) -> Any:
        if operation_of(request) not in CREATES or self.fired:
            return None
        self.fired = True
        self._http.send(request)
        self.meanwhile()
        raise ReadTimeoutError(endpoint_url=request.url)


@pytest.mark.parametrize("strategy", ["marker", "sharded"])
def test_a_lost_answer_on_the_creating_call_is_recognised(
    ddb: DynamoDBLocal, api: str, client: Any, table: str, strategy: Any
) -> None:
    mine = fresh_client(ddb, api)  # botocore re-sends up to 2 times
    store = store_on(mine, table)
    others: list[bool] = []

    def another_process() -> None:
        seen = CounterStore(client, table).counter("seats", strategy=strategy, floor=0)
        others.append(seen.create(initial=50, exist_ok=True))

    with LoseCreate(mine, another_process) as hook:
        created = store.counter("seats", strategy=strategy, floor=0).create(
            initial=50, exist_ok=True
        )
    assert hook.fired
    assert (created, others) == (True, [False])
    assert CounterStore(client, table).counter("seats").value() == 50


@pytest.mark.parametrize("strategy", ["marker", "sharded"])
def test_exactly_one_of_many_racing_callers_creates(client: Any, table: str, strategy: Any) -> None:
    callers = 8
    start = threading.Barrier(callers)
    answers: list[bool] = []
    errors: list[BaseException] = []

    def caller() -> None:
        handle = CounterStore(client, table).counter("hot", strategy=strategy, floor=0)
        start.wait()
        try:
            answers.append(handle.create(initial=100, exist_ok=True))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(answers) == [False] * (callers - 1) + [True]
    assert CounterStore(client, table).counter("hot").value() == 100


def test_the_cli_create_exist_ok(
    ddb: DynamoDBLocal, table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from dynamodb_counters.cli import main

    target = ["--endpoint-url", ddb.endpoint_url, "--table", table, "--json"]
    create = ["counter", "create", "seats", "--strategy", "marker", "--floor", "0", *target]
    assert main([*create, "--initial", "7", "--exist-ok"]) == 0
    assert json.loads(capsys.readouterr().out) == {"name": "seats", "value": 7, "created": True}
    assert main([*create, "--initial", "9", "--exist-ok"]) == 0
    assert json.loads(capsys.readouterr().out) == {"name": "seats", "value": None, "created": False}
    assert main([*create, "--initial", "9"]) == 1
    assert capsys.readouterr().err == "dynamodb-counters: error: counter 'seats' already exists\n"
    other = ["counter", "create", "seats", "--strategy", "atomic", "--exist-ok", *target]
    assert main(other) == 1
    err = capsys.readouterr().err
    assert err.startswith("dynamodb-counters: error: ") and "strategy" in err
    assert len(err.splitlines()) == 1
