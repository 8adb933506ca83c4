"""Every figure the README shows, from runs of the code as it is: ``make readme-figures``.

The README's sample output, its flash-sale and api-quota tables, its ``advise`` sample and its
section on scale sit between markers (``<!-- figures:NAME -->`` ... ``<!-- /figures:NAME -->``).
This script

1. runs the commands a user runs (``dynamodb-counters demo``, the default flash sale, the
   default api-quota scenario) or reads their results files (``--demo-results``,
   ``--flash-results``, ``--quota-results``), and ``dynamodb-counters advise`` for the static
   parts;
2. writes ``docs/figures.json``: what each block shows, the commands, when and at which commit
   they ran;
3. rewrites each block of ``README.md`` from that file.

``tests/test_readme.py`` checks that every block of the README is what this file renders from
``docs/figures.json``, and that the static parts (``advise``, scale) are what the code says
today: a figure copied by hand, or left behind by a change, fails the test.

    .venv/bin/python benchmarks/readme_figures.py                 # runs both (about 8 minutes)
    .venv/bin/python benchmarks/readme_figures.py --static-only   # advise and scale only
    .venv/bin/python benchmarks/readme_figures.py --demo-results counter-report/results.json
    .venv/bin/python benchmarks/readme_figures.py --static-only --quota-results quota.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FIGURES = ROOT / "docs" / "figures.json"
DEMO_COMMAND = ["dynamodb-counters", "demo", "--quiet"]
FLASH_COMMAND = ["dynamodb-counters", "bench", "--scenario", "flash-sale", "--quiet"]
QUOTA_COMMAND = ["dynamodb-counters", "bench", "--scenario", "api-quota", "--quiet"]
ADVISE_SAMPLE = ["advise", "--idempotent", "--floor", "--rate", "100", "--window", "1h"]
ADVISE_PLAN = ["advise", "--adds-per-second", "100000", "--window", "1h", "--floor"]
_BLOCK = re.compile(r"(<!-- figures:([a-z-]+) -->\n)(.*?)(<!-- /figures:\2 -->)", re.DOTALL)


# -- what the static parts say today ----------------------------------------------------------


def _advise_text(argv: list[str]) -> str:
    from dynamodb_counters.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(argv)
    return out.getvalue()


def static_figures() -> dict[str, Any]:
    """The parts no run decides: ``advise``'s answers and the limits and plans of scale."""
    from dynamodb_counters.advise import LIMITS, PLAN_RATES, plan, plan_lines

    return {
        "advise_sample": {
            "command": "dynamodb-counters " + " ".join(ADVISE_SAMPLE),
            "output": _advise_text(ADVISE_SAMPLE),
        },
        "advise_plan": {
            "command": "dynamodb-counters " + " ".join(ADVISE_PLAN),
            "output": _advise_text(ADVISE_PLAN),
        },
        "scale": {
            "limits": list(LIMITS),
            "plans": [plan_lines(plan(rate)) for rate in PLAN_RATES],
        },
    }


# -- what the runs measured -------------------------------------------------------------------


def _run(command: list[str], json_path: Path) -> dict[str, Any]:
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / command[0]), *command[1:]], check=True, cwd=ROOT)
    data: dict[str, Any] = json.loads(json_path.read_text(encoding="utf-8"))
    return data


def demo_figures(results: dict[str, Any]) -> dict[str, Any]:
    from dynamodb_counters.bench.display import terminal_text
    from dynamodb_counters.report import read_results

    costs = {row["name"]: row["cost"].get("usd_per_million_acked") for row in results["strategies"]}
    return {
        "command": " ".join(DEMO_COMMAND[:2]),
        "started_at": results["run"].get("started_at"),
        "terminal": terminal_text(read_results(results)),
        "usd_per_million_acked": costs,
    }


def flash_figures(results: dict[str, Any]) -> dict[str, Any]:
    flash = results["flash_sale"]
    rows = []
    for row in flash["targets"]:
        if row.get("skipped"):
            continue
        led = row["ledger"]
        rows.append(
            {
                "target": row["name"],
                "adds_per_s": row["accepted_adds_per_s"],
                "throttled": row["throttled_requests"],
                "wru_per_add": row["units"]["wru_per_add"],
                "rru_per_add": row["units"]["rru_per_add"],
                "usd_per_million": row["usd_per_million_adds"],
                "false_sold_out": led["false_sold_out"],
                "oversold": led["oversold"],
                "drift": led["drift"],
            }
        )
    options = flash.get("options") or {}
    return {
        "command": " ".join(FLASH_COMMAND) + " --json flash.json",
        "started_at": flash.get("started_at"),
        "stock": options.get("stock"),
        "orders": options.get("orders"),
        "workers": options.get("workers"),
        "item_write_limit": (flash.get("model") or {}).get("item_write_limit"),
        "rows": rows,
        "sharded_8_vs_1": flash.get("sharded_8_vs_1"),
    }


def quota_figures(results: dict[str, Any], commit: str) -> dict[str, Any]:
    quota = results["api_quota"]
    rows = [
        {
            key: row[key]
            for key in (
                "window",
                "hits_per_s",
                "p50_ms",
                "p99_ms",
                "granted",
                "max_granted_in_a_window",
                "windows_over_the_limit",
                "stored_equals_granted",
                "windows_checked",
                "windows",
                "throttled_requests",
                "write_units_per_hit",
                "usd_per_million_hits",
            )
        }
        | {"errors": sum(row["errors_reaching_clients"].values())}
        for row in quota["rows"]
    ]
    return {
        "command": " ".join(QUOTA_COMMAND) + " --json quota.json",
        "started_at": quota["started_at"],
        # Measured apart from the demo and the flash sale: its own commit.
        "commit": commit,
        "engine": quota["engine"],
        "write_limit_per_partition": quota["write_limit_per_partition"],
        "limit": quota["limit"],
        "per_s": quota["per_s"],
        "workers": quota["rows"][0]["workers"],
        "ops_per_client": quota["ops_per_client"],
        "rows": rows,
    }


# -- the blocks -------------------------------------------------------------------------------


def _when(figures: dict[str, Any], part: dict[str, Any]) -> str:
    return (
        f"run at {str(part.get('started_at') or figures['written_at'])[:16].replace('T', ' ')} "
        f"UTC, commit {figures['commit']}"
    )


def _demo_output(figures: dict[str, Any]) -> str:
    demo = figures["demo"]
    return (
        "```\n"
        f"$ {demo['command']}\n"
        f"{demo['terminal']}"
        "```\n\n"
        f"(`make readme-figures`: {_when(figures, demo)}; the same seed gives the same workload "
        "and faults, the timings vary.)\n"
    )


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _flash_sale(figures: dict[str, Any]) -> str:
    flash = figures["flash"]
    lines = [
        f"One run of the defaults (`{flash['command']}`; stock {flash['stock']}, "
        f"{flash['orders']} orders, {flash['workers']} threads, R = {flash['item_write_limit']:g}; "
        f"`make readme-figures`: {_when(figures, flash)}):",
        "",
        "| target | adds/s | throttled requests | write units / add | read units / add "
        "| $ / M adds | false sold out / oversold / drift |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in flash["rows"]:
        lines.append(
            f"| `{row['target']}` | {row['adds_per_s']:.1f} | {row['throttled']:,} "
            f"| {row['wru_per_add']:.2f} | {row['rru_per_add']:.2f} "
            f"| {_money(row['usd_per_million'])} "
            f"| {row['false_sold_out']} / {row['oversold']} / {row['drift']} |"
        )
    ratio = flash.get("sharded_8_vs_1")
    if ratio is not None:
        lines += ["", f"In this run 8 shards sold **{ratio:.1f} ×** the rate of one shard."]
    return "\n".join(lines) + "\n"


def _api_quota(figures: dict[str, Any]) -> str:
    quota = figures["api_quota"]
    lines = [
        f"One run of the defaults (`{quota['command']}`: {quota['workers']} threads x "
        f"{quota['ops_per_client']} hits, each with its own request id, against one quota of "
        f"{quota['limit']} per {quota['per_s']:g} s; {quota['engine']}, "
        f"{quota['write_limit_per_partition']:g} write units/s for the quota's partition; "
        f"`make readme-figures`: {_when({**figures, 'commit': quota['commit']}, quota)}):",
        "",
        "| window | hits/s | p50 ms | p99 ms | granted | most granted in a window "
        "| windows over the limit | items hold what was granted | throttled requests "
        "| errors reaching clients | write units / hit | $ / M hits |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in quota["rows"]:
        held = "yes" if row["stored_equals_granted"] else "NO"
        lines.append(
            f"| {row['window']} | {row['hits_per_s']:.0f} | {row['p50_ms']:.1f} "
            f"| {row['p99_ms']:.0f} | {row['granted']:,} | {row['max_granted_in_a_window']} "
            f"| {row['windows_over_the_limit']} "
            f"| {held} ({row['windows_checked']} of {row['windows']} windows) "
            f"| {row['throttled_requests']:,} | {row['errors']:,} "
            f"| {row['write_units_per_hit']:.2f} | {_money(row['usd_per_million_hits'])} |"
        )
    return "\n".join(lines) + "\n"


def _advise_sample(figures: dict[str, Any]) -> str:
    sample = figures["advise_sample"]
    return f"```\n$ {sample['command']}\n{sample['output']}```\n"


def _advise_plan(figures: dict[str, Any]) -> str:
    sample = figures["advise_plan"]
    return f"```\n$ {sample['command']}\n{sample['output']}```\n"


def _scale(figures: dict[str, Any]) -> str:
    scale = figures["scale"]
    lines = [f"- {line}." for line in scale["limits"]]
    for head, *steps in scale["plans"]:
        lines += ["", f"**{head[0].upper()}{head[1:]}:**", ""]
        lines += [f"- {step.strip().removeprefix('- ')}" for step in steps]
    return "\n".join(lines) + "\n"


BLOCKS: dict[str, Callable[[dict[str, Any]], str]] = {
    "demo-output": _demo_output,
    "flash-sale": _flash_sale,
    "api-quota": _api_quota,
    "advise-sample": _advise_sample,
    "advise-plan": _advise_plan,
    "scale": _scale,
}


def blocks_in(text: str) -> dict[str, str]:
    """``{name: content}`` of every block in a README."""
    return {found.group(2): found.group(3) for found in _BLOCK.finditer(text)}


def render(text: str, figures: dict[str, Any]) -> str:
    """``text`` with every block rewritten from ``figures``."""

    def one(found: re.Match[str]) -> str:
        return found.group(1) + BLOCKS[found.group(2)](figures) + found.group(4)

    return _BLOCK.sub(one, text)


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (head or "unknown") + (" with changes to src/" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-results", type=Path, help="a demo's results.json (no run)")
    parser.add_argument("--flash-results", type=Path, help="a flash sale's --json (no run)")
    parser.add_argument("--quota-results", type=Path, help="an api-quota run's --json (no run)")
    parser.add_argument(
        "--commit",
        help="the commit the given results files were measured at (default: HEAD)",
    )
    parser.add_argument(
        "--static-only",
        action="store_true",
        help="refresh advise and scale only; keep the measured figures of docs/figures.json",
    )
    args = parser.parse_args(argv)
    old: dict[str, Any] = (
        json.loads(FIGURES.read_text(encoding="utf-8")) if FIGURES.exists() else {}
    )
    figures: dict[str, Any] = {
        "written_by": "make readme-figures (benchmarks/readme_figures.py)",
        "written_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": args.commit or _commit(),
    }
    if args.static_only:
        figures.update({k: old[k] for k in ("demo", "flash", "api_quota", "commit") if k in old})
        if args.quota_results:
            quota = json.loads(args.quota_results.read_text(encoding="utf-8"))
            figures["api_quota"] = quota_figures(quota, args.commit or _commit())
    else:
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch)
            demo = (
                json.loads(args.demo_results.read_text(encoding="utf-8"))
                if args.demo_results
                else _run([*DEMO_COMMAND, "--out", str(out / "demo")], out / "demo/results.json")
            )
            flash = (
                json.loads(args.flash_results.read_text(encoding="utf-8"))
                if args.flash_results
                else _run([*FLASH_COMMAND, "--json", str(out / "flash.json")], out / "flash.json")
            )
            quota = (
                json.loads(args.quota_results.read_text(encoding="utf-8"))
                if args.quota_results
                else _run([*QUOTA_COMMAND, "--json", str(out / "quota.json")], out / "quota.json")
            )
        figures["demo"] = demo_figures(demo)
        figures["flash"] = flash_figures(flash)
        figures["api_quota"] = quota_figures(quota, figures["commit"])
    figures.update(static_figures())
    FIGURES.parent.mkdir(exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    README.write_text(render(README.read_text(encoding="utf-8"), figures), encoding="utf-8")
    print(f"wrote {FIGURES.relative_to(ROOT)} and the blocks of {README.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
