"""The report's panels for the opt-in models, from a real run, checked in Chromium.

One short run of ``llm_tiers.yaml`` cut to 30 specialists (so the queue fills
and admission sheds), with half of each pool on spot and random reclaims: its
report must add the provider tokens, spot share and shed-per-tier panels to
the spec's five, load offline without an error, and draw what the metrics say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from chromium import VIEWPORT, missing_tools

from sim.report.level_panels import level_panels
from sim.runner import run, write_outputs
from sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]
# One worker runs the module, so its report is simulated and written once.
pytestmark = pytest.mark.xdist_group("level_panels")
OVERRIDES = [
    "duration=30m",
    "warmup=5m",
    "topology.specialists=30",
    "tiers.queue_limit=20",
    "purchase.spot={share: 0.5, reclaim_rate: 2}",
]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("levels")
    scenario = load_scenario(ROOT / "scenarios" / "llm_tiers.yaml", OVERRIDES)
    write_outputs(run(scenario), out)
    return out


def test_the_panels_draw_what_the_metrics_say(report_dir: Path) -> None:
    metrics = pd.read_parquet(report_dir / "metrics.parquet")
    panels = {p.panel_id: p for p in level_panels(metrics, float(metrics["time_s"].max()))}
    assert list(panels) == ["panel-tokens", "panel-spot", "panel-shed"]
    names = [s.name for s in panels["panel-tokens"].series]
    providers = sorted(set(metrics.loc[metrics["level"] == "provider", "id"]))
    assert len(providers) >= 1 and all(f"{p} input" in names for p in providers)
    assert any(name.endswith("input limit") for name in names)
    share = np.asarray(panels["panel-spot"].series[0].y, dtype=float)
    assert ((share > 0) & (share < 1)).all()
    shed = {s.name: sum(s.y) for s in panels["panel-shed"].series}
    tiers = metrics.loc[metrics["level"] == "tier"].groupby("id")["tasks_shed"].sum()
    assert shed == tiers.to_dict() and sum(shed.values()) > 0
    assert list(shed) == ["critical", "standard", "batch"]


def test_the_report_page_holds_the_three_sections(report_dir: Path) -> None:
    html = (report_dir / "report.html").read_text()
    for key in ("tokens", "spot", "shed"):
        assert html.count(f'<section class="panel" id="{key}">') == 1, key
        assert f"panel-{key}" in html, key
    assert html.index('id="tokens"') < html.index('id="spot"') < html.index('id="shed"')


def test_an_ordinary_run_gets_none_of_them() -> None:
    metrics = pd.DataFrame({"replication": [0], "time_s": [60.0], "level": ["global"]})
    assert level_panels(metrics, 60.0) == []


def test_the_report_shows_eight_panels_in_chromium(report_dir: Path, browser: Any) -> None:
    reason = missing_tools()
    if reason is not None or browser is None:
        pytest.fail(reason or "chromium did not start")
    context = browser.new_context(viewport=VIEWPORT, offline=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda req: errors.append(f"{req.url} {req.failure}"))
    try:
        page.goto((report_dir / "report.html").as_uri(), wait_until="load")
        assert page.locator(".ipanel").count() == 8
        for section_id in ("tokens", "spot", "shed"):
            element = page.locator(f"#{section_id}")
            assert element.count() == 1, section_id
            assert element.is_visible(), section_id
            assert element.locator(".main-svg").count() >= 1, section_id
            box = element.bounding_box()
            assert box is not None and box["height"] > 200 and box["width"] > 300, section_id
        # the legend names every tier on the shed panel
        legend = page.locator("#shed .legendtext").all_text_contents()  # (SVG text: no innerText)
        assert {"critical", "standard", "batch"} <= set(legend)
    finally:
        context.close()
    assert not errors
