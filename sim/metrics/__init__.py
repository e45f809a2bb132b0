"""One record format for both shells, the metrics collector, and the run summary."""
