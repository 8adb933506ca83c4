"""The HTML report: self-contained, every chart present, rendered by a real browser."""

from __future__ import annotations

import copy
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import new_table_name
from dynamodb_counters.bench import Backend, BenchOptions, Mix, run_bench
from dynamodb_counters.errors import InvalidInput
from dynamodb_counters.faults import FaultPlan
from dynamodb_counters.local import DynamoDBLocal
from dynamodb_counters.report import CONTENT_SECURITY_POLICY, render_html, write_report
from dynamodb_counters.report.charts import CHARTS
from dynamodb_counters.report.schema import SCHEMA_VERSION, BenchResults, read_results

# Its module-scoped fixtures are built once: every test of the file runs on one xdist worker.
pytestmark = pytest.mark.xdist_group("test_report")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def results(ddb: DynamoDBLocal) -> BenchResults:
    options = BenchOptions(
        workers=2,
        ops=8,
        initial=6,
        floor=0,
        mix=Mix(increment_share=0.2),
        faults=FaultPlan(lost_answer_rate=0.2, seed=5),
        compare_raw=True,
        backend=Backend(endpoint_url=ddb.endpoint_url, table=new_table_name("r")),
    )
    return run_bench(options)


def test_report_is_one_self_contained_file(results: BenchResults, tmp_path: Path) -> None:
    path = write_report(results, tmp_path / "out")
    assert path == tmp_path / "out" / "index.html"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["index.html"]
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # Nothing is fetched: no scripts, no stylesheets, no images, no remote URLs.
    for forbidden in ("<script", "<link", "<img", "src=", "@import", "url(http"):
        assert forbidden not in page
    remote = re.findall(r"https?://[^\s\"'<>)]+", page)
    allowed = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    # The backend's address appears as text in the run's description, and is never fetched.
    endpoint = results["run"]["backend"]["endpoint_url"]
    assert endpoint is not None
    allowed.add(endpoint)
    assert set(remote) <= allowed, remote
    charts = re.findall(r'<svg class="chart" data-chart="([a-z]+)"', page)
    assert charts == list(CHARTS)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "element ids must be unique across the inline SVGs"
    for row in results["strategies"]:
        assert f"<td>{row['name']}</td>" in page


def test_report_says_who_drifted(results: BenchResults) -> None:
    doctored = copy.deepcopy(results)
    for row in doctored["strategies"]:
        row["ledger"]["drift"] = -3 if row["name"] == "atomic" else 0
    page = render_html(doctored)
    assert "atomic (-3)" in page
    assert '<span class="drift">-3</span>' in page


def test_report_package_never_imports_boto3(results: BenchResults, tmp_path: Path) -> None:
    import json

    source = tmp_path / "r.json"
    source.write_text(json.dumps(results))
    code = (
        "import json, sys\n"
        "from dynamodb_counters.report import write_report\n"
        f"write_report(json.load(open({str(source)!r})), {str(tmp_path / 'x')!r})\n"
        "assert 'boto3' not in sys.modules, 'report imported boto3'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert (tmp_path / "x" / "index.html").is_file()


_MEASURE = """<script>
for (const svg of document.querySelectorAll("svg.chart")) {
  const box = svg.getBoundingClientRect();
  svg.setAttribute("data-rendered", Math.round(box.width) + "x" + Math.round(box.height));
}
</script>"""


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_every_chart_renders_in_headless_chromium(results: BenchResults, tmp_path: Path) -> None:
    page = write_report(results, tmp_path / "report")
    # A copy with a measuring script (the report itself has none, and its Content-Security-
    # Policy would block one, so the copy goes without): each chart's laid-out size.
    probe = tmp_path / "probe.html"
    policy = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
    assert policy in page.read_text()
    probe.write_text(page.read_text().replace(policy, "").replace("</body>", _MEASURE + "</body>"))
    dom = _chromium("--dump-dom", probe.as_uri(), profile=tmp_path / "profile").stdout
    sizes = dict(re.findall(r'data-chart="([a-z]+)"[^>]*data-rendered="(\d+x\d+)"', dom))
    assert set(sizes) == set(CHARTS), dom[:500]
    for chart, size in sizes.items():
        width, height = (int(x) for x in size.split("x"))
        assert width > 200 and height > 100, (chart, size)
    # And the real report, unmodified, paints something that is not blank.
    shot = tmp_path / "shot.png"
    _chromium(
        "--window-size=1200,2400",
        f"--screenshot={shot}",
        page.as_uri(),
        profile=tmp_path / "profile2",
    )
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    rgb = pixels[..., :3]
    not_white = (rgb < 0.9).any(axis=-1).mean()
    assert not_white > 0.05
    # The drift chart's green (exact) bars are there: #2e7d32.
    green = (
        (abs(rgb[..., 0] - 0x2E / 255) < 0.03)
        & (abs(rgb[..., 1] - 0x7D / 255) < 0.03)
        & (abs(rgb[..., 2] - 0x32 / 255) < 0.03)
    )
    assert green.sum() > 500


# -- what the report says (SPEC section 10) ------------------------------------------------------


def test_which_strategy_never_recommends_one_that_crossed_a_bound(
    results: BenchResults,
) -> None:
    from dynamodb_counters.report.which import decisions

    doctored = copy.deepcopy(results)
    for row in doctored["strategies"]:
        if row["name"] == "transaction":  # as if it had sold 3 below the floor
            ledger = row["ledger"]
            ledger["oversold"], ledger["floor_crossed"], ledger["min_seen"] = 3, True, -3
    chosen = {d["need"]: d for d in decisions(doctored)}
    ten_minutes = chosen["Retries recognised for 10 minutes; a floor"]
    assert ten_minutes["choice"] == "marker"  # the next cheapest that kept its floor
    assert ten_minutes["passed_over"] == ["transaction: oversold by 3 in this run"]
    for need, decision in chosen.items():
        if "a floor" in need:
            # collection ran without the floor it cannot enforce, and sold below it.
            assert decision["choice"] not in ("collection", "transaction"), need
    forever = chosen["Retries recognised forever; no bound"]
    assert forever["choice"] == "collection"
    page = render_html(doctored)
    assert "<h2>Which strategy?</h2>" in page
    assert "passed over: transaction: oversold by 3 in this run" in page


def test_a_drifted_strategy_is_never_offered_for_retries(results: BenchResults) -> None:
    from dynamodb_counters.report.which import decisions

    doctored = copy.deepcopy(results)
    for row in doctored["strategies"]:
        if row["name"] == "marker":
            row["ledger"]["drift"] = 2
    days = next(
        d for d in decisions(doctored) if d["need"].startswith("Retries recognised for days")
    )
    assert days["choice"] is None
    assert days["passed_over"] == ["marker: drifted by +2 in this run"]


def test_collection_with_a_floor_is_never_drawn_as_exact(results: BenchResults) -> None:
    collection = next(r for r in results["strategies"] if r["name"] == "collection")
    assert collection["ledger"]["oversold"] > 0
    page = render_html(results)
    cards = page[page.index('<div class="verdict">') : page.index('<div class="grid">')]
    exact = cards[cards.index("<b>Exact</b>") : cards.index("<b>Drifted</b>")]
    assert "collection" not in exact
    assert f"collection: floor not enforced: oversold by {collection['ledger']['oversold']}" in (
        cards
    )


def test_windows_are_not_made_up(results: BenchResults) -> None:
    from dynamodb_counters.report.charts import _window_seconds

    rows = {r["name"]: copy.deepcopy(r) for r in results["strategies"]}
    assert _window_seconds(rows["collection"]) == (
        None,
        "no time limit: until compact() folds the delta",
    )
    history = rows["occ_history"]
    # Refused adds never enter a window: 50 ids at 10 applied adds/s last 5 s, whatever the
    # rate of attempts.
    history["throughput"]["ops_per_s"] = 40.0
    history["throughput"]["applied_per_s"] = 10.0
    seconds, label = _window_seconds(history)
    assert seconds == 5.0
    assert label.startswith("last 50 ids (~5.0 s at this run's applied rate")
    rotating = rows["set"]
    rotating["capabilities"]["window_numbers"] = {"kind": "ids", "ids": 100, "up_to": 200}
    rotating["throughput"]["applied_per_s"] = 20.0
    assert _window_seconds(rotating)[1].startswith("last 100 to 200 ids (~5.0 s")


def test_every_chart_has_a_reading_line(results: BenchResults) -> None:
    page = render_html(results)
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page, flags=re.DOTALL)
    assert len(captions) == len(CHARTS)
    for caption in captions:
        assert '<p class="read">Read: ' in caption


_OVERFLOW = """<script>
const page = document.documentElement;
const wide = [...document.querySelectorAll("table")].filter(
  (t) => t.scrollWidth > t.parentElement.clientWidth + 1);
document.body.setAttribute("data-overflow",
  page.scrollWidth + "/" + window.innerWidth + "/" + wide.length + "/" +
  document.querySelectorAll("table").length);
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_no_side_scrolling_at_1300_pixels(results: BenchResults, tmp_path: Path) -> None:
    page = write_report(results, tmp_path / "report")
    probe = tmp_path / "probe.html"
    # The report's Content-Security-Policy forbids scripts: the copy with a measuring script
    # goes without it.
    policy = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
    text = page.read_text().replace(policy, "")
    probe.write_text(text.replace("</body>", _OVERFLOW + "</body>"))
    dom = _chromium(
        "--window-size=1300,2000", "--dump-dom", probe.as_uri(), profile=tmp_path / "p"
    ).stdout
    found = re.search(r'data-overflow="(\d+)/(\d+)/(\d+)/(\d+)"', dom)
    assert found, dom[:500]
    width, viewport, wide, tables = (int(x) for x in found.groups())
    assert viewport == 1300
    assert width <= viewport  # the page itself never scrolls sideways
    assert wide == 0  # no table is wider than its column
    assert tables == 4  # the decision table and three of figures


def test_the_report_reads_through_the_schema_and_older_documents_too(
    results: BenchResults,
) -> None:
    document = json.loads(json.dumps(results))
    assert read_results(document) == document
    # A version 1 document from before bench --async (no run.api) reads as the sync API did.
    del document["run"]["api"]
    assert "2 threads" in render_html(read_results(document))
    with pytest.raises(InvalidInput, match="schema version 2"):
        read_results({**document, "schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(InvalidInput, match="not a bench results document"):
        read_results({"strategies": []})


# -- a phone, and charts whose parts stay apart (issue 18, item 14) ------------------------------


@pytest.fixture(scope="module")
def page(results: BenchResults) -> str:
    """The report of the module's run, drawn once for the tests that only read it."""
    return render_html(results)


def _without_charts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Charts drawn as empty SVG: for tests of the page's text (matplotlib takes seconds)."""
    for key, (title, _) in list(CHARTS.items()):
        monkeypatch.setitem(CHARTS, key, (title, lambda _results: "<svg></svg>"))


def test_nothing_wider_than_a_phone_is_fixed_and_tables_scroll_in_a_box(page: str) -> None:
    """At 390 px the chart grid's 480 px minimum column ran off the right edge, and so did the
    tables. The rule: no length above 360 px unless capped by the page (``min(100%, N)``), and
    every table inside its own sideways-scrolling box."""
    from dynamodb_counters.report import _STYLE

    # A maximum never widens anything; a length capped by the page never exceeds it.
    capped = re.sub(r"max-width:\s*\d+px|min\(100%,\s*\d+px\)", "", _STYLE)
    fixed = [int(px) for px in re.findall(r"(\d+)px", capped)]
    assert all(px <= 360 for px in fixed), fixed
    assert re.search(r"\.scroll\{[^}]*overflow-x:auto", _STYLE)
    assert page.count("<table") == page.count('<div class="scroll"><table') > 0


_PAGE_WIDTH = """<script>
window.addEventListener("load", () => {
  const frame = document.getElementById("phone");
  const page = frame.contentDocument.documentElement;
  document.body.setAttribute("data-width",
    page.scrollWidth + "/" + frame.contentWindow.innerWidth);
  const rows = Array.from(frame.contentDocument.querySelectorAll("table.fig tbody tr"));
  document.body.setAttribute("data-row",
    Math.max(...rows.map((row) => row.getBoundingClientRect().height)));
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_no_side_scrolling_on_a_phone(results: BenchResults, tmp_path: Path) -> None:
    page = write_report(results, tmp_path / "report")
    policy = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
    # Headless Chromium's window is at least 500 px wide: the page goes into a 390 px frame
    # (srcdoc: same origin, so the outer page can measure it once it is laid out).
    inner = html.escape(page.read_text().replace(policy, ""), quote=True)
    probe = tmp_path / "probe.html"
    probe.write_text(
        f'<!DOCTYPE html><html><body><iframe id="phone" width="390" height="2000" '
        f'srcdoc="{inner}"></iframe>{_PAGE_WIDTH}</body></html>'
    )
    dom = _chromium(
        "--window-size=800,2000",
        "--virtual-time-budget=10000",
        "--dump-dom",
        probe.as_uri(),
        profile=tmp_path / "p",
    ).stdout
    found = re.search(r'data-width="(\d+)/(\d+)"', dom)
    assert found, dom[:200]
    width, viewport = (int(x) for x in found.groups())
    assert viewport == 390
    assert width <= viewport  # the page never runs off a phone's right edge
    # A table squeezed into the phone's width stacked its verdicts a word a line (rows 200 px
    # and more): a prose column keeps a readable width, and its table scrolls sideways.
    tallest = re.search(r'data-row="([\d.]+)"', dom)
    assert tallest and float(tallest.group(1)) <= 130, tallest


def _drawn(monkeypatch: pytest.MonkeyPatch, draw: Any, results: BenchResults) -> Any:
    """The matplotlib figure a chart function draws (instead of its SVG)."""
    from dynamodb_counters.report import charts

    figures: list[Any] = []

    def keep(fig: Any, prefix: str) -> str:
        figures.append(fig)
        return ""

    monkeypatch.setattr(charts, "_svg", keep)
    draw(results)
    (fig,) = figures
    fig.canvas.draw()
    return fig


def test_every_latency_bar_is_visible(
    results: BenchResults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A p50 of 5 ms beside a p99 of 800 ms was a bar of 3 pixels: a log scale shows both."""
    from dynamodb_counters.report.charts import latency_chart

    doctored = copy.deepcopy(results)
    for row in result_rows_of(doctored):
        row["latency_ms"].update({"p50": 5.0, "p95": 60.0, "p99": 800.0})
    fig = _drawn(monkeypatch, latency_chart, doctored)
    (ax,) = fig.axes
    widths = [p.get_window_extent().width for p in ax.patches]
    assert len(widths) == 3 * len(result_rows_of(doctored))
    assert min(widths) >= 20, min(widths)  # pixels, at the chart's own size (750 px wide)


@pytest.mark.parametrize("chart", ["cost", "latency"])
def test_a_legend_is_never_drawn_over_the_axis_label(
    chart: str, results: BenchResults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With two strategies the cost chart's legend, placed below the axes, sat on the label."""
    doctored = copy.deepcopy(results)
    doctored["strategies"] = [
        r for r in doctored["strategies"] if r["name"] in ("atomic", "marker")
    ]
    fig = _drawn(monkeypatch, CHARTS[chart][1], doctored)
    (ax,) = fig.axes
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    for part in (ax.xaxis.label, ax.title):
        assert not legend.overlaps(part.get_window_extent(renderer)), part.get_text()
    for tick in ax.get_xticklabels():
        if tick.get_text():
            assert not legend.overlaps(tick.get_window_extent(renderer))


def result_rows_of(results: BenchResults) -> list[Any]:
    from dynamodb_counters.report import result_rows

    return result_rows(results)


def test_sharded_has_its_window_bar(results: BenchResults) -> None:
    """sharded remembers a request id while its marker lives: 7 days by default, also read
    from results written before its window had numbers."""
    from dynamodb_counters.report.charts import _window_seconds

    sharded = copy.deepcopy(next(r for r in results["strategies"] if r["name"] == "sharded"))
    assert sharded["capabilities"]["window_numbers"] == {"kind": "time", "seconds": 604800.0}
    assert _window_seconds(sharded) == (604800.0, "7 days")
    sharded["capabilities"]["window_numbers"] = {"kind": "unknown"}  # an older results file
    assert _window_seconds(sharded) == (604800.0, "7 days")


def test_which_strategy_quotes_the_throughput_the_chart_shows(
    results: BenchResults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chart draws the median of the rounds; "Which strategy?" quoted the whole run's
    rate (45 where the chart showed 49). One figure, one source."""
    doctored = copy.deepcopy(results)
    for row in doctored["strategies"]:
        row["throughput"]["ops_per_s"] = 45.0
        row["throughput"]["ops_per_s_spread"] = {"min": 30.0, "median": 49.0, "max": 60.0}
    _without_charts(monkeypatch)
    page = render_html(doctored)
    which = page[page.index("<h2>Which strategy?</h2>") : page.index("<h2>Scale on AWS</h2>")]
    assert "49 ops/s" in which
    assert "45 ops/s" not in which


def test_no_spec_sections_nor_none_in_user_text(results: BenchResults, page: str) -> None:
    assert results["run"]["options"]["ceiling"] is None
    text = re.sub(r"<svg.*?</svg>", "", page, flags=re.DOTALL)
    text = re.sub(r"<[^>]+>", " ", text)
    assert "SPEC" not in text
    assert not re.findall(r"(?<!=)\bNone\b", text)  # "applied=None" is the API's own word
    assert "floor 0, no ceiling" in text


def test_a_net_drift_names_the_applications_own_duplicate_sends(results: BenchResults) -> None:
    """ "atomic drifted by -6 (+2 up, -6 down)" did not add up: 2 of the application's own
    duplicate sends, counted again by a strategy without request ids, made the rest."""
    from dynamodb_counters.report import verdict_line

    atomic = copy.deepcopy(next(r for r in results["strategies"] if r["name"] == "atomic"))
    atomic["ledger"]["drift"] = -6
    atomic["ledger"]["lost_answer_ops"].update(
        {"increments": 2, "decrements": 6, "resent_up": 2, "resent_down": -6}
    )
    atomic["counts"].update({"acknowledged": 182, "acknowledged_ids": 180, "outcome_unknown": 0})
    assert verdict_line(atomic).startswith(
        "drifted by -6 (net; re-sent after lost answers: +2 up, -6 down; 2 of the "
        "application's own duplicate sends counted again"
    )


def test_the_report_states_scale_on_aws(page: str) -> None:
    from markupsafe import escape

    from dynamodb_counters.advise import LIMITS

    scale = page[page.index("<h2>Scale on AWS</h2>") : page.index("<h2>All figures</h2>")]
    for line in LIMITS:
        assert str(escape(line)) in scale
    assert "at 10,000 adds/s: sharded, 1 counter of 64 shards, 1 table" in scale
    assert "at 100,000 adds/s: sharded, 10 counters of 64 shards, 10 tables" in scale


def test_every_value_from_a_results_file_is_text(
    results: BenchResults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page is a Jinja2 template with autoescaping: markup smuggled into a results file
    (a name, a window, an error type) is shown as text, never parsed."""
    doctored = copy.deepcopy(results)
    row = doctored["strategies"][0]
    row["name"] = '<img src=x onerror="alert(1)">'
    row["capabilities"]["window"] = "</td><script>alert(2)</script>"
    row["counts"]["errors_by_type"] = {"<b>Boom</b>": 1}
    _without_charts(monkeypatch)
    page = render_html(doctored)
    for markup in ("<img src=x", "<script>", "<b>Boom</b>"):
        assert markup not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert "&lt;/td&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page


#: A checkout section as the demo writes it (bench.checkout.checkout_section), figures fixed.
CHECKOUT_ROW = {
    "target": "marker",
    "carts": 48,
    "held": 30,
    "refused": 18,
    "committed": 14,
    "cancelled": 6,
    "abandoned": 9,
    "expired_at_pay": 1,
    "returned": 10,
    "reclaimed_at_end": 3,
    "final_value": 6,
    "expected_value": 6,
    "oversold": 0,
    "exact": True,
    "returned_once": True,
    "false_sold_out": 0,
    "errors": [],
    "seconds": 4.2,
    "rru_per_cart": 1.5,
    "wru_per_cart": 9.25,
    "usd_per_million_carts": 6.15,
    "conflicts": 17,
    "throttled": 0,
    "stale_reads": 2,
}


def _with_checkout(results: BenchResults, **row: Any) -> BenchResults:
    from dynamodb_counters.bench.checkout import verdict_line, verdict_ok

    doctored = copy.deepcopy(results)
    rows = [{**CHECKOUT_ROW, **row}, {**CHECKOUT_ROW, "target": "sharded x4"}]
    doctored["checkout"] = {
        "scenario": "checkout",
        "options": {
            "stock": 20,
            "carts": 48,
            "workers": 8,
            "ttl": 1.0,
            "commit_rate": 0.5,
            "cancel_rate": 0.2,
            "shards": 4,
            "seed": 7,
            "engine": "aws-like",
        },
        "targets": rows,
        "all_exact": all(verdict_ok(r) for r in rows),
        "verdict": verdict_line(rows),
    }
    return doctored


def _checkout_text(page: str) -> str:
    section = page[page.index('<h2 id="checkout">') : page.index("<h2>Run</h2>")]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", section)))


def test_the_checkout_section_renders_its_figures_and_verdict(
    results: BenchResults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's checkout (holds): oversold, returned once, final = stock - paid, false sold
    out, the cost per cart and a verdict, after the flash sale and before the run's details."""
    _without_charts(monkeypatch)
    page = render_html(_with_checkout(results))
    assert page.index('<h2 id="checkout">') < page.index("<h2>Run</h2>")
    assert '<div class="card ok"><b>exact on marker, sharded x4: 0 oversold' in page
    text = _checkout_text(page)
    assert "48 carts of one unit each against a stock of 20, from 8 threads" in text
    assert "pays (50%), cancels (20%) or is abandoned" in text
    assert "Engine: aws-like" in text
    # target, held / refused, paid, cancelled, abandoned, returned, final = stock - paid,
    # oversold, false sold out, WU / RU per cart, $ / M carts, conflicts / throttled, seconds
    row = "marker 30 / 18 14 6 9 10 6 = 6 0 0 9.25 / 1.50 6.15 17 / 0 4.2"
    assert row in text
    assert "sharded x4 30 / 18 " in text
    assert "every abandoned hold returned once, final value = stock - committed, 0 false " in text
    # Without a checkout (a bench run, an older document) there is no section.
    assert 'id="checkout"' not in render_html(results)


def test_a_checkout_that_oversold_says_so(
    results: BenchResults, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_charts(monkeypatch)
    page = render_html(_with_checkout(results, oversold=1, final_value=5, returned_once=False))
    assert '<div class="card bad"><b>NOT EXACT: marker (see the rows)</b>' in page
    assert "5 != 6" in _checkout_text(page)
    assert '<span class="drift">1</span>' in page


def test_code_in_a_table_cell_is_code_not_backticks(results: BenchResults, page: str) -> None:
    """The strategies' window texts name their options between backticks (for the terminal):
    the speed table showed "the last `history` request ids" with the backticks."""
    names = {r["name"] for r in results["strategies"]}
    assert {"occ_history", "set"} <= names
    text = re.sub(r"<svg.*?</svg>", "", page, flags=re.DOTALL)
    assert "`" not in text
    assert "<td>the last <code>history</code> request ids (default 50)</td>" in text
    assert "<td>the last <code>capacity</code> to 2 x <code>capacity</code> request ids" in text


def test_the_checkout_terminal_table_shows_write_and_read_units(results: BenchResults) -> None:
    """The demo's terminal showed only write units per cart under "wru/cart" (sharded's 16.77
    read units a cart were in the report only) and prices as they fell (7.3 beside 5.38)."""
    from dynamodb_counters.bench.checkout import render

    section = _with_checkout(results, usd_per_million_carts=7.3)["checkout"]
    lines = render(section).splitlines()
    assert lines[1].endswith("false  WU/RU cart     $/M")
    assert lines[2] == (
        "marker          30      18    14      6       9       10     6        0     0"
        "   9.25/1.50    7.30"
    )
    assert max(len(line) for line in lines) <= 100


def test_the_flash_chart_writes_rates_as_the_table_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """sharded@1 at 7.46 adds/s was labelled "7" beside the table's 7.5 and the bar's 7.5."""
    from dynamodb_counters.report.charts import flash_chart

    def row(name: str, rate: float, shards: int | None = None) -> dict[str, Any]:
        return {"name": name, "accepted_adds_per_s": rate, "shards": shards}

    flash: Any = {  # the section only, as flash_chart takes it
        "model": {"per": "partition", "item_write_limit": 30.0},
        "targets": [
            row("atomic", 29.9),
            row("marker", 7.46),
            row("sharded@1", 7.46, 1),
            row("sharded@8", 54.12, 8),
        ],
    }
    fig = _drawn(monkeypatch, flash_chart, flash)
    left, right = fig.axes
    assert [t.get_text() for t in left.texts] == ["7.5", "54.1"]
    assert [t.get_text() for t in right.texts][:2] == ["29.9", "7.5"]
    assert right.get_title() == "one partition key"
    assert right.texts[-1].get_text() == " R = 30 WU/s per partition"


def test_scale_on_aws_says_what_the_run_measured(
    results: BenchResults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said "This run measured DynamoDB Local, which has none of these limits" for every
    run: beside a checkout run AWS-like, and for a run against AWS or another endpoint."""
    _without_charts(monkeypatch)

    def intro(doc: BenchResults) -> str:
        page = render_html(doc)
        scale = page[page.index("<h2>Scale on AWS</h2>") : page.index("<h2>All figures</h2>")]
        return html.unescape(scale.split("<p>", 1)[1].split(" What one counter", 1)[0])

    assert results["run"]["backend"]["kind"] == "endpoint"
    assert intro(results) == (
        "This run measured the engine at its --endpoint-url; on AWS these limits hold."
    )
    embedded = copy.deepcopy(results)
    embedded["run"]["backend"]["kind"] = "dynamodb-local"
    assert intro(embedded) == "This run measured DynamoDB Local, which has none of these limits."
    assert intro(_with_checkout(embedded)) == (
        "This run measured DynamoDB Local, which has none of these limits (the checkout below "
        "ran in its AWS-like mode, which models a partition's)."
    )
    on_aws = copy.deepcopy(results)
    on_aws["run"]["backend"]["kind"] = "aws"
    assert intro(on_aws) == "This run measured DynamoDB itself, where these limits hold."
