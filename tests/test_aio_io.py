"""The async executor (``_aio_io``), faults below aiobotocore's retries, and the packaging that
keeps aiobotocore out of the sync package. Against DynamoDB Local."""

from __future__ import annotations

import subprocess
import sys


def test_the_sync_package_never_imports_aiobotocore() -> None:
    """``pip install dynamodb-counters`` works without the ``async`` extra."""
    code = (
        "import sys, dynamodb_counters, dynamodb_counters.cli, dynamodb_counters.faults, "
        "dynamodb_counters.local\n"
        "assert 'aiobotocore' not in sys.modules, 'aiobotocore was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
