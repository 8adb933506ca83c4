"""The public API surface: names, exception tree, strategy registry, and the pk-only example."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

import dynamodb_counters
from conftest import new_table_name
from dynamodb_counters import (
    STRATEGIES,
    AddResult,
    CallRecord,
    Capabilities,
    CounterError,
    CounterStore,
    InvalidInput,
    Strategy,
    ThresholdExceeded,
)

# Written out by hand so that adding, renaming or dropping a public name is a deliberate change.
EXPECTED_ALL = [
    "STRATEGIES",
    "AddResult",
    "CallRecord",
    "Capabilities",
    "CapacityExceeded",
    "ContentionError",
    "Counter",
    "CounterDefinition",
    "CounterError",
    "CounterExists",
    "CounterNotFound",
    "CounterStore",
    "DefinitionMismatch",
    "Hold",
    "HoldExpired",
    "HoldNotFound",
    "InvalidInput",
    "NotSupported",
    "Quota",
    "QuotaDecision",
    "RequestIdMismatch",
    "Strategy",
    "TableNotFound",
    "ThresholdExceeded",
    "__version__",
]

EXCEPTIONS = [
    "CapacityExceeded",
    "ContentionError",
    "CounterExists",
    "CounterNotFound",
    "DefinitionMismatch",
    "HoldExpired",
    "HoldNotFound",
    "InvalidInput",
    "NotSupported",
    "RequestIdMismatch",
    "TableNotFound",
    "ThresholdExceeded",
]

EXPECTED_STRATEGIES = {
    # name: (idempotent, thresholds at write time)
    "atomic": (False, True),
    "occ": (False, True),
    "occ_history": (True, True),
    "transaction": (True, True),
    "marker": (True, True),
    "collection": (True, False),
    "set": (True, True),
    "sharded": (True, True),
}


def test_all_is_sorted_and_does_not_drift() -> None:
    exported = dynamodb_counters.__all__
    assert exported == EXPECTED_ALL
    # ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then the rest, each alphabetical.
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n.startswith("_"), n))
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert hasattr(dynamodb_counters, name), name


def test_version_is_a_string() -> None:
    assert isinstance(dynamodb_counters.__version__, str)
    assert dynamodb_counters.__version__.count(".") == 2


@pytest.mark.parametrize("name", EXCEPTIONS)
def test_every_exception_is_a_counter_error(name: str) -> None:
    exc = getattr(dynamodb_counters, name)
    assert issubclass(exc, CounterError)
    assert exc is not CounterError


def test_exception_list_is_complete() -> None:
    """No exception is exported that the list above (and so the test above) does not cover."""
    exported = {
        name
        for name in dynamodb_counters.__all__
        if isinstance(getattr(dynamodb_counters, name), type)
        and issubclass(getattr(dynamodb_counters, name), BaseException)
    }
    assert exported == {*EXCEPTIONS, "CounterError"}
    assert issubclass(CounterError, Exception)


def test_invalid_input_is_a_value_error() -> None:
    assert issubclass(InvalidInput, ValueError)
    with pytest.raises(ValueError):
        raise InvalidInput("bad")


def test_strategies_registry() -> None:
    assert list(STRATEGIES) == list(EXPECTED_STRATEGIES)
    for name, (idempotent, thresholds) in EXPECTED_STRATEGIES.items():
        cls = STRATEGIES[name]
        assert issubclass(cls, Strategy)
        assert cls.name == name
        assert cls.idempotent is idempotent
        assert cls.supports_thresholds is thresholds
        caps = cls.capabilities
        assert isinstance(caps, Capabilities)
        assert caps.idempotent is idempotent
        assert caps.thresholds is thresholds
        assert caps.requests_per_add in (1, 2)
        assert caps.window and caps.write_units_per_add and caps.tells_duplicates
        assert cls.__doc__


def test_results_are_frozen_slotted_dataclasses() -> None:
    result = AddResult(applied=True, value=3, request_id="r")
    assert (result.requests, result.sdk_retries) == (1, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.value = 4  # type: ignore[misc]
    for cls in (AddResult, CallRecord, Capabilities):
        assert dataclasses.is_dataclass(cls)
        assert hasattr(cls, "__slots__")


def test_public_names_have_docstrings() -> None:
    for name in dynamodb_counters.__all__:
        obj = getattr(dynamodb_counters, name)
        if isinstance(obj, type):
            assert obj.__doc__, name
    for method in ("create", "add", "value", "delete"):
        assert getattr(dynamodb_counters.Counter, method).__doc__, method
    for method in ("counter", "ensure_table", "add_listener"):
        assert getattr(CounterStore, method).__doc__, method


@pytest.fixture
def pk_only(client: Any) -> Iterator[str]:
    """A table made by someone else: partition key ``pk`` only, created with plain boto3."""
    name = new_table_name("pk-only")
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield name
    client.delete_table(TableName=name)


def test_pk_only_example(client: Any, pk_only: str) -> None:
    """SPEC section 2: an existing ``{"pk": "abc123", "quantity": 3}`` item is a counter."""
    client.put_item(TableName=pk_only, Item={"pk": {"S": "abc123"}, "quantity": {"N": "3"}})
    store = CounterStore(client, pk_only, sort_key=None)
    counter = store.counter("abc123", strategy="atomic", floor=0)
    assert counter.value() == 3
    result = counter.add(-3)
    assert (result.applied, result.value) == (True, 0)
    with pytest.raises(ThresholdExceeded) as caught:
        counter.add(-3)
    assert caught.value.value == 0
    assert counter.value() == 0
    item = client.get_item(TableName=pk_only, Key={"pk": {"S": "abc123"}}, ConsistentRead=True)
    assert item["Item"] == {"pk": {"S": "abc123"}, "quantity": {"N": "0"}}


def test_the_typed_names_match_the_strategies() -> None:
    """StrategyName and CounterOptions (what type checkers see) are exactly what the store
    accepts: the strategy ids, and every strategy's window options plus the retry options."""
    from typing import get_args

    from dynamodb_counters import STRATEGIES
    from dynamodb_counters.strategies import CounterOptions, Strategy, StrategyName

    assert set(get_args(StrategyName)) == set(STRATEGIES)
    windows = {o.name for cls in STRATEGIES.values() for o in cls.window_options}
    assert set(CounterOptions.__annotations__) == windows | Strategy.common_options
    for cls in STRATEGIES.values():
        assert cls.own_options == {o.name for o in cls.window_options}
