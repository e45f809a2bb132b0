"""Analysis on top of runs: queueing theory (and, later, planning, sweeps, regression)."""
