"""The neutral world both shells share: what the orchestra is and what reaches it.

Topology (zones, teams, specialists), the seeded random streams, the
workload and DAG-job sources, and the network's latency model. None of it
keeps time or does I/O — no SimPy, no asyncio, no broker — so the SimPy shell
(``sim.model``) and the live shell (``sim.live``) build the very same fleet
and arrivals from one scenario and seed without importing each other.
"""
