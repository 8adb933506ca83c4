"""The README: every Python snippet runs as written (imports and endpoint included), and every
figure it shows comes from a run of the code (``make readme-figures``), not from a hand."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FIGURES = ROOT / "docs" / "figures.json"
TEXT = README.read_text(encoding="utf-8")
SNIPPETS = re.findall(r"```python\n(.*?)```", TEXT, re.DOTALL)

# The maintainers' script that writes docs/figures.json and the README's blocks (not a module
# of the package): loaded from its file.
_SPEC = importlib.util.spec_from_file_location(
    "readme_figures", ROOT / "benchmarks/readme_figures.py"
)
assert _SPEC is not None and _SPEC.loader is not None
readme_figures: Any = importlib.util.module_from_spec(_SPEC)
sys.modules["readme_figures"] = readme_figures
_SPEC.loader.exec_module(readme_figures)


def test_the_readme_has_snippets() -> None:
    assert len(SNIPPETS) >= 2


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_snippet_runs(snippet: str) -> None:
    exec(compile(snippet, str(README), "exec"), {"__name__": "__readme__"})


# -- figures from runs ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIGURES.read_text(encoding="utf-8"))
    return data


def test_every_block_of_figures_is_what_the_figures_file_says(figures: dict[str, Any]) -> None:
    """Each marked block of the README is rendered from docs/figures.json, which the command
    wrote: a number edited by hand in the README, or a block not refreshed, fails here."""
    blocks = readme_figures.blocks_in(TEXT)
    assert set(blocks) == set(readme_figures.BLOCKS)
    for name, content in blocks.items():
        assert content == readme_figures.BLOCKS[name](figures), (
            f"README block {name!r} differs from docs/figures.json: run `make readme-figures`"
        )


def test_what_no_run_decides_is_what_the_code_says_today(figures: dict[str, Any]) -> None:
    """advise's sample answer and the scale section come from the code: a change to either
    must refresh them (`benchmarks/readme_figures.py --static-only`)."""
    live = readme_figures.static_figures()
    for part in ("advise_sample", "advise_plan", "scale"):
        assert figures[part] == live[part], (
            f"docs/figures.json's {part} is stale: run "
            "`.venv/bin/python benchmarks/readme_figures.py --static-only`"
        )


def test_the_costs_shown_are_the_runs(figures: dict[str, Any]) -> None:
    """The demo's $ per million acknowledged adds in the README are the run's (collection was
    once shown at $0.67/M, hand-copied, while a run gave $2.54/M)."""
    terminal = figures["demo"]["terminal"]
    for name, usd in figures["demo"]["usd_per_million_acked"].items():
        row = next(line for line in terminal.splitlines() if line.startswith(name + " "))
        assert row.split()[-1] == f"{usd:.2f}", row
    assert terminal in TEXT


def test_every_dollar_figure_outside_the_blocks_is_a_pricing_rule() -> None:
    """Outside the generated blocks the README may state prices only as the pricing rules give
    them (advise's answers for its rules, and the unit prices): nothing measured."""
    from dynamodb_counters.advise import Needs, advise

    outside = readme_figures._BLOCK.sub("", TEXT)
    rules = {
        advise(needs).usd_per_million
        for needs in (
            Needs(),
            Needs(idempotent=True),
            Needs(window=3600.0),
            Needs(window=float("inf")),
            Needs(rate=5000.0),
        )
    }
    allowed = {f"{x:.2f}" for x in rules} | {f"{x:.3f}" for x in rules} | {"0.625", "0.125"}
    for found in re.findall(r"\$(\d+\.\d+)", outside):
        assert found in allowed, f"${found} in the README is not a pricing rule"
