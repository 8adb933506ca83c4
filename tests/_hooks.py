"""One base for the tests' ``before-send`` hooks: faults and interleavings below botocore."""

from __future__ import annotations

from typing import Any, Self


def operation_of(request: Any) -> str:
    """The DynamoDB operation of a prepared request (``X-Amz-Target``)."""
    return str(request.headers.get("X-Amz-Target", b"")).rsplit(".", 1)[-1].strip("'")


class SendHook:
    """Registers ``_hook`` on ``client``'s ``before-send.dynamodb`` event while in a ``with``."""

    client: Any

    def __enter__(self) -> Self:
        self.client.meta.events.register("before-send.dynamodb", self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.meta.events.unregister("before-send.dynamodb", self._hook)

    def _hook(self, request: Any, **_: Any) -> Any:
        raise NotImplementedError
