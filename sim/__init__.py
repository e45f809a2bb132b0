"""Orchestra Sim: a discrete-event simulator and capacity planner for fleets of agents."""

__version__ = "0.1.0"
