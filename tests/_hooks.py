"""One base for the tests' ``before-send`` hooks: faults and interleavings below the SDK's
retries, on a botocore or an aiobotocore client."""

from __future__ import annotations

from typing import Any, Self

from dynamodb_counters._aio_hooks import before_send_handler
from dynamodb_counters.faults import operation_of as operation_of  # the tests' hooks use it


class SendHook:
    """Registers ``_hook`` on ``client``'s ``before-send.dynamodb`` event while in a ``with``.

    ``_hook`` is written for botocore (it may block, send requests, raise, return an
    ``AWSResponse``); on an aiobotocore client it runs in a worker thread, so that what it does
    meanwhile may use the event loop, and its answer is made aiobotocore's kind.
    """

    client: Any

    def __enter__(self) -> Self:
        self._handler = before_send_handler(self.client, self._hook, in_thread=True)
        self.client.meta.events.register("before-send.dynamodb", self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.meta.events.unregister("before-send.dynamodb", self._handler)

    def _hook(self, request: Any, **_: Any) -> Any:
        raise NotImplementedError
