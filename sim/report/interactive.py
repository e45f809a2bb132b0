"""Interactive time panels: Plotly charts whose x ranges move together.

A report's time series (p99 wait, agents, queue, throughput, cost) are drawn
in the browser by plotly.js, so a reader can hover a point to read its value,
drag a box to zoom or pan, and click a legend entry to hide a series. The
panels share one time axis: zooming or panning any of them sets the same x
range on all the others (a ``plotly_relayout`` handler below), which is what
a reader comparing a queue spike with the scaling decision after it needs.

Why Plotly: it is a single self-contained script (no loader, no fonts, no
network), maintained, and hover, zoom, pan and legend toggling are built in;
Vega-Lite with vega-embed would need three scripts and links x ranges only
between views of one spec. The cost is size: the minified script shipped in
the ``plotly`` wheel is about 4.8 MB, inlined once per page. The report must
open offline years later, so the script is inlined, never fetched.

Figures are built as plain JSON (trace and layout dicts), not with plotly's
Python API: the page depends only on the script, and the data stay readable.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["Mark", "Panel", "Series", "panel_html", "panels_script", "plotly_js"]

#: Colours of overlaid runs, in order (Plotly's default cycle, colour-blind tolerable).
RUN_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
)


@dataclass(frozen=True)
class Series:
    """One line: x in the panel's time unit, y in its y unit (NaN leaves a gap)."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    colour: str | None = None
    dash: str = "solid"
    #: Legend group: toggling one run's entry in one panel is local, but the group keeps
    #: a run's line and its marks together within the panel.
    group: str = ""


@dataclass(frozen=True)
class Mark:
    """Points marking moments (alerts, scaling decisions), each with its hover text."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    text: Sequence[str]
    colour: str
    symbol: str = "triangle-up"
    group: str = ""


@dataclass(frozen=True)
class Panel:
    """One chart: its element id, title, axis labels, lines and marks.

    Panels with ``linked`` set share their x range with every other linked
    panel on the page (time panels do; a heat-map or a Pareto plot does not).
    """

    panel_id: str
    title: str
    x_label: str
    y_label: str
    series: Sequence[Series] = ()
    marks: Sequence[Mark] = ()
    linked: bool = True
    #: The initial x range; linked panels share one, so they start aligned.
    x_range: tuple[float, float] | None = None
    height_px: int = 300
    #: Extra Plotly traces as raw dicts (heat-maps, scatter plots with custom hover).
    raw_traces: Sequence[dict[str, Any]] = field(default_factory=tuple)
    #: Extra layout keys merged into the panel's layout.
    layout: dict[str, Any] = field(default_factory=dict)


@cache
def plotly_js() -> str:
    """The minified plotly.js shipped inside the ``plotly`` wheel (read once per process)."""
    path = resources.files("plotly") / "package_data" / "plotly.min.js"
    return path.read_text(encoding="utf-8")


def _clean(values: Sequence[float]) -> list[float | None]:
    """Numbers for JSON: NaN and infinities become null (a gap in the line)."""
    out: list[float | None] = []
    for value in values:
        number = float(value)
        out.append(round(number, 6) if math.isfinite(number) else None)
    return out


def _trace(series: Series) -> dict[str, Any]:
    line: dict[str, Any] = {"width": 1.6, "dash": series.dash}
    if series.colour:
        line["color"] = series.colour
    return {
        "type": "scatter",
        "mode": "lines",
        "name": series.name,
        "legendgroup": series.group or series.name,
        "x": _clean(series.x),
        "y": _clean(series.y),
        "line": line,
        "hovertemplate": f"{_hover_name(series.name)}: %{{y:.4g}} at %{{x:.4g}}<extra></extra>",
    }


def _hover_name(name: str) -> str:
    # Plotly's hover templates read %{...}; a literal percent sign must not start one.
    return name.replace("%", "%%")


def _mark_trace(mark: Mark) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "markers",
        "name": mark.name,
        "legendgroup": mark.group or mark.name,
        "x": _clean(mark.x),
        "y": _clean(mark.y),
        "text": list(mark.text),
        "marker": {"symbol": mark.symbol, "size": 9, "color": mark.colour},
        "hovertemplate": "%{text}<extra></extra>",
    }


def figure_json(panel: Panel) -> dict[str, Any]:
    """The Plotly figure (data and layout) of one panel, as plain JSON."""
    data = [_trace(s) for s in panel.series]
    data += [_mark_trace(m) for m in panel.marks]
    data += list(panel.raw_traces)
    layout: dict[str, Any] = {
        "title": {"text": panel.title, "x": 0.01, "font": {"size": 14}},
        "height": panel.height_px,
        "margin": {"l": 60, "r": 20, "t": 40, "b": 45},
        "xaxis": {"title": {"text": panel.x_label}, "zeroline": False},
        "yaxis": {"title": {"text": panel.y_label}, "rangemode": "tozero"},
        "hovermode": "x",
        "legend": {"orientation": "h", "y": -0.25},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
    }
    if panel.x_range is not None:
        layout["xaxis"]["range"] = list(panel.x_range)
    layout.update(panel.layout)
    return {"data": data, "layout": layout, "linked": panel.linked}


def panel_html(panel: Panel) -> str:
    """The panel's element and its figure as inline JSON (drawn by :func:`panels_script`)."""
    payload = json.dumps(figure_json(panel), separators=(",", ":"), allow_nan=False)
    # JSON inside <script> must not close the element: escape "<" (and so "</script>").
    payload = payload.replace("<", "\\u003c")
    pid = html.escape(panel.panel_id, quote=True)
    return (
        f'<div class="ipanel" id="{pid}" data-panel="{pid}"></div>'
        f'<script type="application/json" class="ipanel-data" data-for="{pid}">'
        f"{payload}</script>"
    )


#: Draws every panel, then links the x ranges of the linked ones. A guard stops the
#: relayout of the other panels from echoing back; "autorange" (double click) resets all.
_LINK_JS = """
(function(){
  var linked=[];var busy=false;
  document.querySelectorAll('script.ipanel-data').forEach(function(s){
    var el=document.getElementById(s.dataset.for);var fig=JSON.parse(s.textContent);
    Plotly.newPlot(el,fig.data,fig.layout,{responsive:true,displaylogo:false});
    if(fig.linked){linked.push(el);}
  });
  linked.forEach(function(el){
    el.on('plotly_relayout',function(ev){
      if(busy){return;}
      var upd=null;
      if(ev['xaxis.range[0]']!==undefined){
        upd={'xaxis.range':[ev['xaxis.range[0]'],ev['xaxis.range[1]']]};
      }else if(ev['xaxis.range']!==undefined){upd={'xaxis.range':ev['xaxis.range']};}
      else if(ev['xaxis.autorange']){upd={'xaxis.autorange':true};}
      if(!upd){return;}
      busy=true;
      var pending=linked.filter(function(o){return o!==el;}).map(function(o){
        return Plotly.relayout(o,upd);});
      Promise.all(pending).then(function(){busy=false;},function(){busy=false;});
    });
  });
  window.orchestraPanels=linked;
})();
"""


def panels_script() -> str:
    """plotly.js and the drawing/linking code, to place once at the end of the page."""
    # The bundle contains no "</script>" (checked by a test); inlined as is.
    return f"<script>{plotly_js()}</script><script>{_LINK_JS}</script>"
