"""The run report's HTML: formatters, page template, sections, and :func:`write_report`."""

from sim.report.html.run_report import SECTION_IDS, write_report
from sim.report.html.tables import MAX_EVENTS

__all__ = ["MAX_EVENTS", "SECTION_IDS", "write_report"]
