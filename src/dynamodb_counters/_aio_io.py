"""The async executor: aiobotocore's twin of :mod:`._io` and :func:`._steps.run_sync`.

Everything around a request (capacity, timing, listeners, the capture of retried failures,
``TableNotFound``) is :class:`._io.Exchange`, shared with the sync executor; only the sending is
awaited here. Nothing in this module imports aiobotocore: any client whose operation methods
are coroutines will do, and ``import dynamodb_counters`` never loads it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from ._io import About, BaseIO, Exchange
from ._steps import Progress, Send, Sleep, Steps

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

T = TypeVar("T")

__all__ = ["AsyncDynamoIO", "run_async"]


class AsyncDynamoIO(BaseIO):
    """Sends requests for one async store; safe for many tasks on one event loop."""

    client: DynamoDBClient

    async def call(
        self, operation: str, params: dict[str, Any], **about: Unpack[About]
    ) -> dict[str, Any]:
        """Send one request; returns aiobotocore's parsed answer, raises what it raises (a
        missing table as :class:`TableNotFound`). ``about``: see :class:`._io.About`."""
        return await self.send(Send(operation, params, **about))

    async def send(self, step: Send) -> dict[str, Any]:
        """Send one step's request (as :meth:`call`)."""
        with Exchange(self, step) as exchange:
            answer: dict[str, Any] = await getattr(self.client, exchange.method)(**exchange.params)
            exchange.answer = answer
        return answer


async def run_async(io: AsyncDynamoIO, steps: Steps[T]) -> T:
    """Run ``steps`` with aiobotocore, as ``run_sync`` does with botocore (see
    :class:`._steps.Progress`): requests and sleeps are awaited."""
    with Progress(steps) as run:
        while (step := run.advance()) is not None:
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
                continue
            try:
                # As io.send, one coroutine frame shallower on every request.
                with Exchange(io, step) as exchange:
                    run.answer = exchange.answer = await getattr(io.client, exchange.method)(
                        **exchange.params
                    )
            except Exception as exc:
                run.failure = exc
        value: T = run.value
        return value
