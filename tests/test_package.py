"""The package as users get it: a light core, the border to the tools, a publishable build.

The core (``pip install dynamodb-counters``) needs boto3 only; the bench, the demo and the report
need the ``[bench]`` extra. Here the tools' dependencies are blocked in a fresh interpreter (a
``None`` in ``sys.modules`` makes their import fail as if they were not installed), and the core
must still import and run its commands, while ``bench`` and ``demo`` say in one line what to
install.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("rich", "matplotlib", "numpy", "PIL", "fontTools")
INSTALL_BENCH = "pip install 'dynamodb-counters[bench]'"

# A fresh interpreter without the [bench] extra's modules, running the CLI's entry point.
WITHOUT_EXTRAS = (
    "import sys\n"
    f"for name in {HEAVY!r}:\n"
    "    sys.modules[name] = None\n"
    "from dynamodb_counters.cli import main\n"
    "raise SystemExit(main(sys.argv[1:]))\n"
)


def without_extras(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_importing_the_core_loads_none_of_the_tools_dependencies() -> None:
    code = (
        "import sys, dynamodb_counters, dynamodb_counters.cli, dynamodb_counters.local\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        f"set({(*HEAVY, 'asyncio', 'aiobotocore')!r})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "args",
    [
        ["counter", "--help"],
        ["counter", "create", "--help"],
        ["table", "--help"],
        ["iam-policy", "--help"],
        ["local", "--help"],
        ["--help"],
    ],
    ids=" ".join,
)
def test_the_core_commands_run_without_the_extras(args: list[str]) -> None:
    done = without_extras(*args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: dynamodb-counters")
    assert done.stderr == ""


def test_strategies_prints_a_plain_table_without_rich() -> None:
    done = without_extras("strategies")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # The rich table's headers, in aligned columns.
    assert lines[0].split() == [
        "strategy",
        "idem.",
        "bounds",
        "req/add",
        "window;",
        "write",
        "units/add",
    ]
    assert lines[1].split()[:4] == ["atomic", "no", "yes", "1"]
    assert lines[1].index("no") == lines[0].index("idem.")
    assert [line.split()[0] for line in lines[1:]] == [
        "atomic",
        "occ",
        "occ_history",
        "transaction",
        "marker",
        "collection",
        "set",
        "sharded",
    ]


def test_advise_needs_no_extra() -> None:
    done = without_extras("advise", "--idempotent", "--window", "1h", "--bounds")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "strategy: marker, marker_ttl=3600 (1 hour)"


@pytest.mark.parametrize("command", ["demo", "bench"])
def test_the_tools_without_their_extra_say_what_to_install(command: str) -> None:
    done = without_extras(command)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"dynamodb-counters: error: {command} needs the bench extra "
        f"(rich, matplotlib not installed): {INSTALL_BENCH}\n"
    )


def test_the_version_has_one_source() -> None:
    from importlib.metadata import version

    import dynamodb_counters

    assert version("dynamodb-counters") == dynamodb_counters.__version__
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject
    assert "\nversion =" not in pyproject


@pytest.mark.slow
def test_the_build_is_publishable_and_light() -> None:
    """``python -m build``, ``twine check``, the wheel's contents, the core's requirements and
    the import's time and modules (scripts/check_footprint.py, without its venv measurement)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_footprint.py"), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
