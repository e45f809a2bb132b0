"""The run report: matplotlib figures and one self-contained HTML page."""
