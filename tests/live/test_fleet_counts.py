"""What waits, what is held and who serves, counted as the simulator counts them.

The live coordinator had counted a task as waiting from its dispatch until the
agent's report of its start came back, and busy agents from their heartbeats.
A pool with a task on its way to a free slot then gave no agent to a
scale-down (the burst test, under CI load: a scale-down missing, or a minute
late). Here each count is checked against the simulator's definition
(``sim.model.zone_state``) on a memory broker, step by step.
"""

from __future__ import annotations

from test_coordinator_logic import Fleet, run

from sim.live.coordinator import Coordinator


def counts(c: Coordinator) -> tuple[float, float, int, int]:
    """(queue depth, in flight, idle agents) as the autoscaler reads them, and the pool's
    queue as the drain choice reads it (zone A, CodeGen)."""
    totals = c.scaling.totals(c.now())
    [pool] = [p for p in c.scaling.pools() if (p.zone, p.category) == ("A", "CodeGen")]
    return totals.queue_depth, totals.in_flight, totals.idle, pool.queued


def zone_a(c: Coordinator) -> tuple[int, int, int, int, int]:
    """Zone A's metrics row: queue depth, in flight, in system, busy agents, busy slots."""
    [a] = [z for z in c.monitoring.snapshots() if z.zone == "A"]
    return a.queue_depth, a.in_flight, a.in_system, a.busy_agents, a.busy_slots


def test_a_task_on_its_way_to_a_free_slot_waits_for_no_agent() -> None:
    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2"):
            await fleet.beat(agent)
        c = fleet.coordinator("topology.specialist.queue_limit=1")
        await c.take_over()

        await fleet.submit(0, 1)  # one to each agent's free slot, neither started yet
        await c.pump()
        assert c.queue_depth() == 0
        assert counts(c) == (0.0, 2.0, 2, 0)
        assert zone_a(c) == (0, 2, 2, 0, 0)

        await fleet.submit(2, 3)  # one more each: beyond their one slot, in their local queues
        await c.pump()
        assert c.queue_depth() == 2
        # The local queues wait, but are not the pool's queue (the drain choice's).
        assert counts(c) == (2.0, 4.0, 2, 0)
        assert zone_a(c) == (2, 4, 4, 0, 0)

        await fleet.result("start", 0, "a1")  # a1 serves: busy from its start
        await c.pump()
        assert counts(c) == (2.0, 4.0, 1, 0)
        assert zone_a(c) == (2, 4, 4, 1, 1)

        await fleet.submit(4)  # both agents full: the task waits in the pool's queue
        await c.pump()
        assert c.queue_depth() == 3
        assert counts(c) == (3.0, 4.0, 1, 1)
        assert zone_a(c) == (3, 4, 5, 1, 1)

        # a1's slot frees and takes its local task; the pool's task stays queued (a free
        # slot pulls from the pool, a local queue's place does not), and waits on.
        await fleet.result("end", 0, "a1")
        await c.pump()
        assert counts(c) == (2.0, 3.0, 2, 1)
        assert zone_a(c) == (2, 3, 4, 0, 0)

    run(body)
