"""The page around a report's sections: its stylesheet and its outer HTML.

The stylesheet is inline and the page loads nothing else, so the file opens
offline; scripts (the chart library, the event filter) are passed in by the
report that needs them and placed at the end of the body.
"""

from __future__ import annotations

from sim.report.html.format import esc

CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
background:#f3f4f6;color:#1f2933}
main{max-width:1500px;margin:0 auto;padding:16px}
h1{font-size:20px;margin:0 0 4px}
h2{font-size:15px;margin:0 0 8px}
.sub{color:#52606d;font-size:12px}
#header{background:#1f2933;color:#f5f7fa;padding:14px 16px;border-radius:8px;margin-bottom:16px}
#header .sub{color:#cbd2d9}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin-top:12px}
.card{background:#323f4b;border-radius:6px;padding:8px 14px;min-width:150px}
.card .k{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:#9aa5b1}
.card .v{font-size:22px;font-weight:600}
.card.bad .v{color:#ff9b9b}
.card .bar{margin-top:5px;background:#52606d}
.card .note{font-size:10px;color:#9aa5b1;margin-top:2px}
.bar{height:8px;border-radius:4px;background:#e4e7eb;overflow:hidden;min-width:60px}
.bar span{display:block;height:100%;background:#3e9ddb}
.bar span.ok{background:#2ca02c}
.bar span.warn{background:#f0a30a}
.bar span.bad{background:#d62728}
.top{display:grid;grid-template-columns:minmax(340px,1fr) minmax(0,2fr);gap:16px;
margin-bottom:16px}
.top section.panel{margin-bottom:0}
@media (max-width:1000px){.top{grid-template-columns:1fr}}
table.zones td.bar-cell{width:45%}
table.zones td:first-child{white-space:nowrap}
table.zones{margin-bottom:10px}
table.zones td{vertical-align:middle;font-size:13px}
table.zones td.ok{color:#1e7b1e;font-weight:600}
table.zones td.warn{color:#b26b00;font-weight:600}
table.zones td.bad{color:#b31b1b;font-weight:600}
tr.all td{border-top:2px solid #cbd2d9;font-weight:600}
.minicards{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 8px}
.minicard{background:#f5f7fa;border:1px solid #e4e7eb;border-radius:6px;padding:4px 10px}
.minicard .k{font-size:10px;text-transform:uppercase;letter-spacing:.05em;color:#52606d}
.minicard .v{font-size:16px;font-weight:600}
.chips{display:flex;flex-wrap:wrap;gap:6px;margin:0 0 8px}
.chip{background:#f5f7fa;border:1px solid #e4e7eb;border-radius:10px;padding:1px 8px;
font-size:11px}
.chip.failure{border-color:#f4b4b4;background:#fdecec}
.chip.recovery{border-color:#b4dfb4;background:#edf8ed}
.chip.election{border-color:#d3c4ea;background:#f4effb}
.chip.alert{border-color:#f7d1a1;background:#fef4e6}
.chip.scale{border-color:#a9cbe8;background:#eaf3fb}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(600px,1fr));gap:16px}
section.panel{background:#fff;border-radius:8px;padding:12px 14px;
box-shadow:0 1px 2px rgba(0,0,0,.08);margin-bottom:16px}
.grid section.panel{margin-bottom:0}
section.panel img{width:100%;height:auto;display:block}
.tables{margin-top:16px}
table{border-collapse:collapse;width:100%;font-size:12px}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{background:#f5f7fa;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.text{word-break:break-word}
td.detail{font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
caption{caption-side:bottom;text-align:left;color:#52606d;padding-top:6px}
.ipanel{width:100%;min-height:300px}
.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:0 0 8px;font-size:12px}
.filters input,.filters select{font:inherit;padding:2px 6px}
table.diff td.better{color:#1e7b1e}
table.diff td.worse{color:#b31b1b}
.causes li{margin-bottom:4px}
.verdict{font-size:14px;margin:0 0 8px}
"""

#: The event log's kind filter and search box: a row shows when its kind matches the
#: selected one (or "all") and its text contains every word typed, case-insensitively.
EVENT_FILTER_JS = """
(function(){
  var table=document.getElementById('event-table');if(!table){return;}
  var kind=document.getElementById('event-kind');var box=document.getElementById('event-search');
  var count=document.getElementById('event-count');
  var rows=Array.prototype.slice.call(table.tBodies[0].rows);
  function apply(){
    var k=kind.value;var words=box.value.toLowerCase().split(/\\s+/).filter(Boolean);var n=0;
    rows.forEach(function(r){
      var text=r.textContent.toLowerCase();
      var show=(k===''||r.dataset.kind===k)&&words.every(function(w){return text.indexOf(w)>=0;});
      r.style.display=show?'':'none';if(show){n+=1;}
    });
    count.textContent=n+' of '+rows.length+' shown';
  }
  kind.addEventListener('change',apply);box.addEventListener('input',apply);apply();
})();
"""


def page(title: str, parts: list[str], scripts: str = "") -> str:
    """The whole document; *scripts* (already ``<script>`` elements) go at the end of the body."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(parts)}</main>{scripts}</body></html>\n"
    )
