"""The comparison report of burst.yaml's three variants, in real Chromium (offline).

``orchestra run scenarios/burst.yaml`` (shortened: 90 minutes, the surge at
30 minutes) writes one folder per variant and ``comparison.html``. In the
browser the page must load offline without an error or any request beyond the
file itself; the p99 panel must hold one line per variant; hovering the
panel must show a value; zooming one time panel by dragging on it must set
the same x range on every other time panel, the autoscaler's view among
them (one line per variant, a hover text per change asked). Screenshots land in
``test-output/``. The run report of one variant gets the same hover and zoom
checks: its panels are the same code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from chromium import SCREENSHOTS, VIEWPORT, missing_tools

from sim.cli import main
from sim.runner import write_outputs

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ("step", "hpa", "keda")
TIME_PANELS = ("panel-p99", "panel-agents", "panel-queue", "panel-throughput", "panel-cost")
#: What each run's autoscaler saw (scaling.parquet): on the same time axis as the rest.
AUTOSCALER = "panel-autoscaler"
LINKED = (*TIME_PANELS, AUTOSCALER)


@pytest.fixture(scope="session")  # (once a worker, however it interleaves modules)
def burst(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("burst")
    code = main(
        [
            "run",
            str(ROOT / "scenarios" / "burst.yaml"),
            "--duration",
            "90m",
            "--set",
            "warmup=10m",
            "--set",
            "workload.arrivals.bursts=[{at: 30m, duration: 20m, factor: 5}]",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    return out


class Page:
    """An offline page that records every error and request while it is open."""

    def __init__(self, browser: Any, path: Path) -> None:
        reason = missing_tools()
        if reason is not None or browser is None:
            pytest.fail(reason or "chromium did not start")
        self.context = browser.new_context(viewport=VIEWPORT, offline=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requested: list[str] = []
        self.page.on(
            "console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None
        )
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("requestfailed", lambda req: self.errors.append(f"failed {req.url}"))
        self.page.on("request", lambda req: self.requested.append(req.url))
        self.page.goto(path.as_uri(), wait_until="load")
        # The panels are drawn by the page's script once plotly.js is parsed.
        self.page.wait_for_function("window.orchestraPanels && window.orchestraPanels.length > 0")

    def panel(self, panel_id: str, expression: str) -> Any:
        return self.page.evaluate(f"(el => {expression})(document.getElementById('{panel_id}'))")

    def plot_area(self, panel_id: str) -> dict[str, float]:
        area = self.page.locator(f"#{panel_id} .nsewdrag").first
        area.scroll_into_view_if_needed()
        box = area.bounding_box()
        assert box is not None
        return dict(box)

    def close(self, screenshot: str) -> None:
        SCREENSHOTS.mkdir(exist_ok=True)
        self.page.mouse.move(0, 0)
        self.page.evaluate("window.scrollTo(0, 0)")  # sticky table heads follow the scroll
        self.page.screenshot(path=str(SCREENSHOTS / screenshot), full_page=True)
        self.context.close()
        assert not self.errors, self.errors
        assert all(url.startswith(("file://", "data:")) for url in self.requested)


def hover_texts(view: Page, panel_id: str) -> list[str]:
    """Move the mouse over the middle of the panel and read the hover labels."""
    box = view.plot_area(panel_id)
    view.page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.5)
    view.page.wait_for_selector(f"#{panel_id} .hoverlayer .hovertext")
    texts: list[str] = view.page.locator(f"#{panel_id} .hoverlayer .hovertext").all_text_contents()
    return texts


def drag_zoom(view: Page, panel_id: str, start: float, stop: float) -> None:
    """Drag across the panel from *start* to *stop* (fractions of its width): a box zoom."""
    box = view.plot_area(panel_id)
    y = box["y"] + box["height"] * 0.5
    view.page.mouse.move(box["x"] + box["width"] * start, y)
    view.page.mouse.down()
    view.page.mouse.move(box["x"] + box["width"] * stop, y, steps=8)
    view.page.mouse.up()


def x_range(view: Page, panel_id: str) -> list[float]:
    value: list[float] = view.panel(panel_id, "el._fullLayout.xaxis.range.slice()")
    return value


def test_comparison_of_burst_variants_in_chromium(burst: Path, browser: Any) -> None:
    report = burst / "comparison.html"
    assert report.is_file()
    for variant in VARIANTS:
        assert (burst / variant / "summary.json").is_file()
    view = Page(browser, report)
    try:
        assert view.page.title() == "burst"
        lines = view.panel("panel-p99", "el.data.filter(t => t.mode === 'lines').map(t => t.name)")
        assert lines == list(VARIANTS)
        drawn = view.page.locator("#panel-p99 .scatterlayer .trace path.js-line").count()
        assert drawn >= 3  # each variant's line is on the screen, not only in the data
        for panel_id in LINKED:
            assert view.page.locator(f"#{panel_id} .main-svg").count() >= 1, panel_id
        seen = view.panel(AUTOSCALER, "el.data.filter(t => t.mode === 'lines').map(t => t.name)")
        assert seen == [f"{v}: response seen" for v in VARIANTS]
        asked = view.panel(
            AUTOSCALER, "el.data.filter(t => t.mode === 'markers').flatMap(t => t.text)"
        )
        assert asked and all(re.match(r"\w+: asked [+-]\d+ at \d+ s", t) for t in asked), asked

        texts = hover_texts(view, "panel-p99")
        assert texts
        assert any(re.search(r"\d", t) for t in texts), texts

        before = {p: x_range(view, p) for p in LINKED}
        assert all(r == before["panel-p99"] for r in before.values())
        drag_zoom(view, "panel-queue", 0.3, 0.6)
        view.page.wait_for_function(
            "JSON.stringify(document.getElementById('panel-p99')._fullLayout.xaxis.range)"
            f" !== {json.dumps(json.dumps(before['panel-p99']))}"
        )
        zoomed = x_range(view, "panel-queue")
        assert zoomed[1] - zoomed[0] < 0.5 * (before["panel-queue"][1] - before["panel-queue"][0])
        for panel_id in LINKED:
            assert x_range(view, panel_id) == pytest.approx(zoomed), panel_id

        # The table: one value column per variant, a difference column for the other two.
        headers = view.page.locator("#compare-table th").all_text_contents()
        assert headers == ["figure", "step", "hpa", "Δ hpa", "keda", "Δ keda"]
        verdicts = view.page.locator("#compare-slo li").all_text_contents()
        assert len(verdicts) == 3
        assert all(v.split(":")[0] in VARIANTS for v in verdicts)
    finally:
        view.close("comparison-burst.png")


def test_run_report_panels_hover_and_zoom_together(burst: Path, browser: Any) -> None:
    view = Page(browser, burst / "step" / "report.html")
    try:
        ids = view.page.evaluate("window.orchestraPanels.map(el => el.id)")
        assert sorted(ids) == sorted(LINKED)
        assert hover_texts(view, "panel-agents")
        legend = view.page.locator("#panel-p99 .legend .traces").first
        legend.click()  # a legend entry toggles its series
        view.page.wait_for_function(
            "document.getElementById('panel-p99')._fullData[0].visible === 'legendonly'"
        )
        before = x_range(view, "panel-cost")
        drag_zoom(view, "panel-p99", 0.2, 0.4)
        view.page.wait_for_function(
            f"document.getElementById('panel-cost')._fullLayout.xaxis.range[0] !== {before[0]}"
        )
        zoomed = x_range(view, "panel-p99")
        for panel_id in LINKED:
            assert x_range(view, panel_id) == pytest.approx(zoomed), panel_id
        # The event log's kind filter leaves only rows of that kind.
        view.page.select_option("#event-kind", "scale")
        shown = view.page.eval_on_selector_all(
            "#event-table tbody tr",
            "rows => rows.filter(r => r.style.display !== 'none').map(r => r.dataset.kind)",
        )
        assert shown
        assert set(shown) == {"scale"}
        view.page.select_option("#event-kind", "")
        view.page.fill("#event-search", "scale down")
        searched = view.page.eval_on_selector_all(
            "#event-table tbody tr",
            "rows => rows.filter(r => r.style.display !== 'none').map(r => r.textContent)",
        )
        assert all("scale" in t.lower() and "down" in t.lower() for t in searched)
    finally:
        view.close("run-report-interactive.png")


@pytest.fixture(scope="module")
def llm_comparison(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two short LLM runs (llm_tiers cut to 30 specialists, 30 minutes) and their comparison:
    the second raises the frontier account's input limit, the what-if these panels serve."""
    from sim.report.compare.page import load_run_dir, write_comparison_report
    from sim.runner import run
    from sim.scenario.load import load_scenario

    root = tmp_path_factory.mktemp("llm")
    base = ["duration=30m", "warmup=5m", "topology.specialists=30", "tiers.queue_limit=20"]
    runs = []
    for name, extra in (
        ("as written", []),
        ("raised", ["llm.providers.frontier.input_tokens_per_min=11e6"]),
    ):
        out = root / name.replace(" ", "_")
        write_outputs(
            run(load_scenario(ROOT / "scenarios" / "llm_tiers.yaml", [*base, *extra])),
            out,
            report=False,
        )
        runs.append(load_run_dir(out, name))
    return write_comparison_report(root / "comparison.html", "llm", "two LLM runs", runs)


def test_comparison_overlays_tokens_and_sheds_and_they_zoom_with_the_rest(
    llm_comparison: Path, browser: Any
) -> None:
    view = Page(browser, llm_comparison)
    try:
        overlays = ("panel-tokens-frontier", "panel-tokens-small", "panel-shed")
        ids = view.page.evaluate("window.orchestraPanels.map(el => el.id)")
        assert set(overlays) <= set(ids)
        names = view.panel("panel-tokens-frontier", "el.data.map(t => t.name)")
        # each run's served tokens, and each run's own input limit (the raise moved it)
        assert {"as written: input", "raised: input"} <= set(names)
        assert {"as written: input limit", "raised: input limit"} <= set(names)
        legend = view.page.locator("#panel-shed .legendtext").all_text_contents()
        assert {"as written: batch", "raised: batch"} <= set(legend)
        before = x_range(view, "panel-tokens-frontier")
        assert before == pytest.approx(x_range(view, "panel-p99"))  # one time axis
        drag_zoom(view, "panel-p99", 0.3, 0.6)
        view.page.wait_for_function(
            "document.getElementById('panel-tokens-frontier')._fullLayout.xaxis.range[0]"
            f" !== {before[0]}"
        )
        zoomed = x_range(view, "panel-p99")
        for panel_id in overlays:
            assert x_range(view, panel_id) == pytest.approx(zoomed), panel_id
    finally:
        view.close("comparison-llm.png")
