"""Comparison reports: runs side by side (variants, replay, compare) and sweeps."""

from sim.report.compare.page import (
    ComparedRun,
    RunDirError,
    load_run_dir,
    write_comparison_report,
)

__all__ = ["ComparedRun", "RunDirError", "load_run_dir", "write_comparison_report"]
