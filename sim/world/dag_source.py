"""DAG job arrivals: when workflows arrive, which shape they have, and their plan.

Scenario: workflows arrive at the chief as a Poisson stream. Each is drawn
from the configured mix of generated shapes (or from DAG files and inline
DAGs), lands in a home zone from the zone mix, and is planned once on
arrival. Jobs the scenario releases at fixed times (``dags.jobs``) join the
stream at their instants, in their home zone, without a draw from any
random stream — so adding them leaves the Poisson jobs as they were. Every
job is planned on arrival — topological order, upward ranks, critical path — by the pure DAG
policy. The plan's ranks become queue priorities and its critical path marks
the tasks that go to the fastest agents.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

import numpy as np

from sim.policies.dag import Dag, DagProgress
from sim.scenario.schema import Scenario
from sim.world.dag_job import DagJob, cp_bound_s, plan_job
from sim.world.dag_shapes import generate_dag, load_dag_file
from sim.world.network import Network
from sim.world.streams import Streams
from sim.world.workload import ServiceDemand, WorkloadError


class DagSource:
    """Job arrivals in time order, each a (time, dag, shape, home zone) tuple."""

    def __init__(
        self, scenario: Scenario, streams: Streams, demand: ServiceDemand, network: Network
    ) -> None:
        self._scenario = scenario
        self._network = network
        spec = scenario.workload.dags
        self._spec = spec
        self._times = streams.get("dags.arrivals")
        self._choice = streams.get("dags.choice")
        self._shape_rng = streams.get("dags.generate")
        self._categories = list(scenario.topology.categories)
        mix = scenario.workload.mix or dict(scenario.topology.categories)
        self._weights = [float(mix[c]) for c in self._categories]
        total = sum(self._weights)
        self._work_mean = (
            sum(w * demand.means[c] for c, w in zip(self._categories, self._weights, strict=True))
            / total
            if total > 0
            else 40.0
        )
        self._zones = [z.name for z in scenario.topology.zones]
        zone_mix = scenario.workload.zone_mix or {z.name: z.weight for z in scenario.topology.zones}
        zone_w = np.asarray([zone_mix[z] for z in self._zones], dtype=float)
        self._zone_p = zone_w / zone_w.sum()
        self._shapes = [s for s, w in spec.shapes.items() if w > 0]
        shape_w = np.asarray([spec.shapes[s] for s in self._shapes], dtype=float)
        self._shape_p = shape_w / shape_w.sum() if len(shape_w) else shape_w
        self._fixed: list[Dag] = []
        for path in spec.files:
            try:
                self._fixed.append(load_dag_file(path, self._categories))
            except ValueError as exc:
                raise WorkloadError(str(exc)) from None
        self._fixed.extend(d.to_dag() for d in spec.inline)
        self._releases = self._load_releases(scenario)
        self._max_speed = 1.0

    def set_max_speed(self, speed: float) -> None:
        self._max_speed = speed

    def _load_releases(self, scenario: Scenario) -> list[tuple[float, Dag, str, str]]:
        """The fixed releases in time order (ties in the order written), DAG files read once."""
        first_zone = self._zones[0]
        releases: list[tuple[float, int, Dag, str]] = []
        for index, release in enumerate(scenario.workload.dags.jobs):
            try:
                dag = load_dag_file(release.file, self._categories)
            except ValueError as exc:
                raise WorkloadError(f"workload.dags.jobs[{index}].file: {exc}") from None
            releases.append((release.at, index, dag, release.zone or first_zone))
        releases.sort(key=lambda item: (item[0], item[1]))
        return [(at, dag, "file:" + dag.name, zone) for at, _index, dag, zone in releases]

    def __iter__(self) -> Iterator[tuple[float, Dag, str, str]]:
        if not self._releases:
            return self._poisson()
        # Stable merge: a fixed release and a Poisson job at the same instant, fixed first.
        return heapq.merge(self._releases, self._poisson(), key=lambda item: item[0])

    def _poisson(self) -> Iterator[tuple[float, Dag, str, str]]:
        spec = self._spec
        rate = spec.rate_per_min / 60.0
        if rate <= 0 or (not self._shapes and not self._fixed):
            return
        t = 0.0
        horizon = self._scenario.duration
        while True:
            t += float(self._times.exponential(1.0 / rate))
            if t >= horizon:
                return
            zone = self._zones[int(self._choice.choice(len(self._zones), p=self._zone_p))]
            use_file = self._fixed and (not self._shapes or self._choice.random() < spec.file_share)
            if use_file:
                dag = self._fixed[int(self._choice.integers(len(self._fixed)))]
                yield t, dag, "file:" + dag.name, zone
                continue
            shape = self._shapes[int(self._choice.choice(len(self._shapes), p=self._shape_p))]
            dag = generate_dag(
                shape,
                spec.size,
                self._shape_rng,
                self._categories,
                self._weights,
                self._work_mean,
                spec.data_mb_mean,
            )
            yield t, dag, shape, zone

    def start_job(self, job_id: int, dag: Dag, shape: str, zone: str, now: float) -> DagJob:
        network = self._scenario.network
        plan = plan_job(dag, network)
        return DagJob(
            job_id=job_id,
            dag=dag,
            plan=plan,
            progress=DagProgress(plan, dag),
            arrival=now,
            home_zone=zone,
            shape=shape,
            cp_bound_s=cp_bound_s(dag, plan, network, self._max_speed),
            nodes={n.node_id: n for n in dag.nodes},
            work={n.node_id: n.work_s for n in dag.nodes},
        )
