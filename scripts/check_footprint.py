"""How light is the core install? Builds the wheel and sdist, checks them, and measures.

Checks (exit 1 on any failure, one line each):

* ``python -m build`` makes an sdist and a wheel, and ``twine check`` accepts both;
* the wheel holds the package only: no tests, no caches (``__pycache__``, ``.pyc``), no DynamoDB
  Local jar (its licence forbids redistribution), no benchmarks;
* the core's requirements are boto3 alone (everything else behind an extra);
* ``import dynamodb_counters`` takes at most ``--import-limit`` seconds of CPU (the best of five
  fresh interpreters; CPU time, because on a shared machine the neighbours add wall time that is
  not ours: the wall time is printed too), and imports none of the tools' dependencies (rich,
  matplotlib, numpy, PIL, fontTools) nor asyncio;
* with ``--venv``: the site-packages of a fresh venv with ``pip install <wheel>`` is at most
  ``--size-limit`` MB larger than one with ``pip install boto3`` alone (pip's cache makes the
  second run quick; about a minute the first time).

Usage: ``python scripts/check_footprint.py [--venv] [--isolated] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("rich", "matplotlib", "numpy", "PIL", "fontTools", "asyncio")
FORBIDDEN_PARTS = ("tests/", "__pycache__", ".pyc", ".jar", "benchmarks/", ".pytest_cache")


def build(out: Path, *, isolated: bool = False) -> tuple[Path, Path]:
    """``python -m build``: the sdist, then the wheel built from it, in ``out``.

    Without ``isolated`` the backend installed here is used (``--no-isolation``: hatchling is a
    dev requirement), so the check needs no fresh build venv: a second, not a minute.
    """
    isolation = [] if isolated else ["--no-isolation"]
    subprocess.run(
        [sys.executable, "-m", "build", *isolation, "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return sdist, wheel


def twine_check(*files: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
        capture_output=True,
        text=True,
    )
    return [] if done.returncode == 0 else [f"twine check failed: {done.stdout}{done.stderr}"]


def wheel_problems(wheel: Path) -> list[str]:
    """What must not be in the wheel, and requirements beyond boto3 outside the extras."""
    problems = []
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(metadata).decode())
    for name in names:
        if any(part in name for part in FORBIDDEN_PARTS):
            problems.append(f"the wheel holds {name}")
        elif not name.startswith(("dynamodb_counters/", "dynamodb_counters-")):
            problems.append(f"the wheel holds {name} (outside the package)")
    core = [r for r in message.get_all("Requires-Dist") or [] if "extra ==" not in r]
    if [r.split(">")[0].split("=")[0].strip() for r in core] != ["boto3"]:
        problems.append(f"the core requires {core}, not boto3 alone")
    if "dynamodb_counters/testing.py" not in names:
        problems.append("the wheel has no pytest plugin (dynamodb_counters/testing.py)")
    return problems


def unpacked_size(wheel: Path) -> int:
    with zipfile.ZipFile(wheel) as archive:
        return sum(info.file_size for info in archive.infolist())


def import_time(python: str = sys.executable, runs: int = 5) -> tuple[float, float, list[str]]:
    """The best of ``runs`` fresh interpreters' ``import dynamodb_counters`` CPU and wall
    times, and the heavy modules it loaded."""
    code = (
        "import sys, time; t = time.perf_counter(); c = time.process_time(); "
        "import dynamodb_counters; "
        "print(time.process_time() - c, time.perf_counter() - t, "
        f"*sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    cpu, wall, loaded = float("inf"), float("inf"), []
    for _ in range(runs):
        out = subprocess.run(
            [python, "-c", code],
            check=True,
            capture_output=True,
            text=True,
            cwd=tempfile.gettempdir(),
        ).stdout.split()
        cpu, wall, loaded = min(cpu, float(out[0])), min(wall, float(out[1])), out[2:]
    return cpu, wall, loaded


def site_packages_size(prefix: Path) -> int:
    (site,) = prefix.glob("lib/python*/site-packages")
    total = 0
    for path in site.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    # pip and setuptools come with every venv: not ours, not boto3's.
    for own in ("pip", "setuptools", "_distutils_hack"):
        for path in site.glob(f"{own}*"):
            files = [path] if path.is_file() else path.rglob("*")
            total -= sum(p.stat().st_size for p in files if p.is_file() and not p.is_symlink())
    return total


def venv_sizes(wheel: Path, work: Path) -> tuple[int, int]:
    """site-packages bytes of a fresh venv with boto3 alone, and of one with the wheel."""
    sizes = []
    for name, requirement in (("boto3", "boto3"), ("core", str(wheel))):
        prefix = work / name
        venv.EnvBuilder(with_pip=True).create(prefix)
        subprocess.run(
            [str(prefix / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement],
            # pip compiles the .pyc files as it installs: they count, as in a real install.
            check=True,
            capture_output=True,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
        sizes.append(site_packages_size(prefix))
    return sizes[0], sizes[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", action="store_true", help="measure installed size in venvs")
    parser.add_argument("--import-limit", type=float, default=0.2, help="seconds (0.2)")
    parser.add_argument("--size-limit", type=float, default=2.0, help="MB beyond boto3 (2)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--isolated", action="store_true", help="build in a fresh build venv (as a release does)"
    )
    args = parser.parse_args(argv)
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        sdist, wheel = build(work / "dist", isolated=args.isolated or args.venv)
        figures["build_s"] = round(time.perf_counter() - started, 1)
        problems = twine_check(sdist, wheel) + wheel_problems(wheel)
        figures["wheel_bytes"] = wheel.stat().st_size
        figures["wheel_unpacked_bytes"] = unpacked_size(wheel)
        cpu, wall, loaded = import_time()
        figures.update(import_cpu_s=round(cpu, 3), import_wall_s=round(wall, 3))
        if cpu > args.import_limit:
            problems.append(f"import dynamodb_counters took {cpu:.3f} s CPU > {args.import_limit}")
        if loaded:
            problems.append(f"import dynamodb_counters loaded {', '.join(loaded)}")
        if args.venv:
            alone, core = venv_sizes(wheel, work / "venvs")
            cpu, wall, loaded = import_time(str(work / "venvs" / "core" / "bin" / "python"))
            figures.update(
                core_venv_import_cpu_s=round(cpu, 3), core_venv_import_wall_s=round(wall, 3)
            )
            if loaded or cpu > args.import_limit:
                problems.append(f"in the core venv: {cpu:.3f} s CPU, loaded {loaded}")
            extra_mb = (core - alone) / 1e6
            figures.update(boto3_mb=round(alone / 1e6, 1), core_mb=round(core / 1e6, 1))
            figures["extra_mb"] = round(extra_mb, 2)
            if extra_mb > args.size_limit:
                problems.append(f"the core install adds {extra_mb:.2f} MB > {args.size_limit}")
    print(json.dumps(figures) if args.json else " ".join(f"{k}={v}" for k, v in figures.items()))
    sys.stdout.flush()
    for problem in problems:
        print(f"check_footprint: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
