"""The network between the chief coordinators: who can reach whom, and how long a message takes.

Scenario: the chiefs share one region. A Raft message between two of them
takes half the intra-region round trip, times a mean-one lognormal jitter of
the scenario's ``jitter_cv`` drawn per message — unless a partition puts
them in different groups or a one-way cut blocks the sender's side, in which
case it is lost. The control plane asks this object and keeps the clock.
"""

from __future__ import annotations

import numpy as np

from sim.scenario.network import Network
from sim.world.streams import Batched


class ChiefNetwork:
    """Reachability (partition groups, one-way cuts) and per-message delay between chiefs."""

    def __init__(self, network: Network, rng: np.random.Generator) -> None:
        rtt = network.intra_region_rtt_ms / 1000.0 if network.enabled else 0.0
        self.one_way_s = rtt / 2
        """The mean one-way delay: half the intra-region RTT (0 with latency switched off)."""
        sigma = float(np.sqrt(np.log1p(network.jitter_cv**2)))
        if sigma > 0 and rtt > 0:
            self._jitter = Batched(lambda n: rng.lognormal(-sigma * sigma / 2, sigma, n))
        else:
            self._jitter = Batched(lambda n: np.ones(n))
        self._groups: list[set[int]] | None = None
        #: One-way cuts (sender, receiver): an asymmetric partition.
        self._blocked: set[tuple[int, int]] = set()

    @property
    def intact(self) -> bool:
        """No partition and no one-way cut: every chief reaches every other."""
        return self._groups is None and not self._blocked

    def delay(self) -> float:
        """One message's one-way delay (draws the next jitter)."""
        return self.one_way_s * self._jitter()

    def connected(self, a: int, b: int) -> bool:
        """Whether a message from *a* reaches *b* (directed: a one-way cut blocks one side)."""
        if a == b:
            return True
        if (a, b) in self._blocked:
            return False
        if self._groups is None:
            return True
        return any(a in group and b in group for group in self._groups)

    def partition(self, groups: list[set[int]]) -> None:
        """Chiefs reach only the members of their own group until :meth:`heal`."""
        self._groups = groups

    def heal(self) -> None:
        self._groups = None

    def cut(self, links: set[tuple[int, int]]) -> None:
        """Block these (sender, receiver) links until :meth:`restore`."""
        self._blocked |= links

    def restore(self, links: set[tuple[int, int]]) -> None:
        self._blocked -= links
