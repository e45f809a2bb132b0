"""report.html in a real browser: Debian's Chromium driven by Playwright.

The first report comes from a real (short) run of phase 3.1; the second adds
hand-made scaling, alert and failure events so the timeline is full. Both
must load offline without a console error, a page error or a failed
request, show every section, and decode every image. A full-page screenshot
of each lands in ``test-output/`` at the repository root for people to look
at (the folder is git-ignored).

Chromium is not downloaded by Playwright: the test drives the system's
``/usr/bin/chromium``, which ``make browser`` (a dependency of ``make test``)
installs. Without it the test fails rather than skips.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from chromium import ROOT, SCREENSHOTS, VIEWPORT, missing_tools
from report_frames import FIGURE_FILES, INCIDENT_RECORDS, PNG_MAGIC, events_frame

from sim.report.html import SECTION_IDS, write_report
from sim.runner import run, write_outputs
from sim.scenario.load import load_scenario


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real run's report, and the same run with incident events added by hand."""
    out = tmp_path_factory.mktemp("browser")
    scenario = load_scenario(ROOT / "scenarios" / "phase_3_1.yaml", ["duration=40m", "warmup=5m"])
    write_outputs(run(scenario), out / "real")
    real = out / "real" / "report.html"

    tasks = pd.read_parquet(out / "real" / "tasks.parquet")
    metrics = pd.read_parquet(out / "real" / "metrics.parquet")
    events = pd.read_parquet(out / "real" / "events.parquet")
    summary: dict[str, Any] = json.loads((out / "real" / "summary.json").read_text())
    # The hand-made hour of incidents, squeezed into the 40-minute run; the scaling targets
    # (made for a 200-agent fleet) moved next to this 50-agent one.
    records = []
    for t, kind, subject, detail in INCIDENT_RECORDS:
        if kind == "scale":
            detail = {**detail, "target": detail["target"] - 150}
        records.append((t * 2400.0 / 3600.0, kind, subject, detail))
    incidents = events_frame(records)
    incidents = incidents.loc[~incidents["kind"].isin(["run_start", "warmup_end", "run_end"])]
    enriched = pd.concat([events, incidents], ignore_index=True)
    incident = write_report(out / "incidents", summary, tasks, metrics, enriched)
    return {"report": real, "report-incidents": incident}


@pytest.mark.parametrize("name", ["report", "report-incidents"])
def test_report_in_chromium(name: str, reports: dict[str, Path], browser: Any) -> None:
    reason = missing_tools()
    if reason is not None or browser is None:
        pytest.fail(reason or "chromium did not start")
    path = reports[name]
    context = browser.new_context(viewport=VIEWPORT, offline=True)
    page = context.new_page()
    console_errors: list[str] = []
    page_errors: list[str] = []
    failed: list[str] = []
    requested: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    page.on("requestfailed", lambda req: failed.append(f"{req.url} {req.failure}"))
    page.on("request", lambda req: requested.append(req.url))
    try:
        page.goto(path.as_uri(), wait_until="load")
        assert page.title().startswith("Orchestra Sim report")

        for section_id in SECTION_IDS:
            element = page.locator(f"#{section_id}")
            assert element.count() == 1, section_id
            assert element.is_visible(), section_id
            box = element.bounding_box()
            assert box is not None, section_id
            assert box["height"] > 0, section_id
            assert box["width"] > 300, section_id

        images = page.eval_on_selector_all(
            "img",
            "imgs => imgs.map(i => ({alt: i.alt, complete: i.complete,"
            " width: i.naturalWidth, height: i.naturalHeight, shown: i.clientWidth}))",
        )
        # The time series are interactive panels (their PNGs stay files beside the report).
        panels = page.locator(".ipanel .main-svg").count()
        # The real run's autoscaler evaluated (scaling.parquet): its view is a sixth panel.
        autoscaled = name == "report"
        assert page.locator(".ipanel").count() == 5 + autoscaled
        assert panels >= 5 + autoscaled
        assert page.locator("#autoscaler").count() == autoscaled
        if autoscaled:
            assert page.locator("#autoscaler").is_visible()
            lines = page.evaluate(
                "document.getElementById('panel-autoscaler').data"
                ".filter(t => t.mode === 'lines').map(t => t.y.length)"
            )
            evaluations = pd.read_parquet(reports["report"].parent / "scaling.parquet")
            assert lines == [len(evaluations)]  # one point per evaluation, holds included
        assert len(images) == len(FIGURE_FILES) - 5
        for image in images:
            assert image["complete"], image["alt"]
            assert image["width"] > 0, image["alt"]
            assert image["height"] > 0, image["alt"]
            assert image["shown"] > 0, image["alt"]

        # Nothing spills sideways out of the page.
        widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1]

        SCREENSHOTS.mkdir(exist_ok=True)
        shot = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(shot), full_page=True)
    finally:
        context.close()

    assert not console_errors
    assert not page_errors
    assert not failed
    # Only the page itself and its inline images were loaded.
    assert all(url.startswith(("file://", "data:")) for url in requested), requested
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert 100_000 < len(data) < 20_000_000
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    assert width == VIEWPORT["width"]
    assert height > 3 * VIEWPORT["height"]
