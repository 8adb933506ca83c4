"""The optional extras and the modules each one brings (the core needs only boto3).

``pip install 'dynamodb-counters[bench]'`` brings what the bench, the demo and the report need;
``[async]`` aiobotocore; ``[otel]`` the OpenTelemetry API. A command whose extra is missing says
so in one line (see :mod:`dynamodb_counters.cli`), never with an ImportError's traceback.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

#: What ``[bench]`` installs, as importable top-level modules: the terminal tables and progress
#: bars (rich) and the report's charts (matplotlib).
BENCH_MODULES = ("rich", "matplotlib")


def missing_modules(modules: Iterable[str]) -> list[str]:
    """The modules of ``modules`` that cannot be imported here (none are imported)."""
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing
