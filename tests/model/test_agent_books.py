"""A specialist keeps its own books (sim.model.agent); the roster wakes reopened teams.

The slot books (sim.model.slots) keep the zones' and the fleet's totals and
ask the agent to open and close its own; these tests read the agent alone.
"""

from __future__ import annotations

import simpy

from sim.model.agent import Specialist
from sim.model.task import Task
from sim.world.topology import SpecialistSpec


def _agent(env: simpy.Environment, slots: int = 2) -> Specialist:
    spec = SpecialistSpec("A-Test-001", "Test", "A", "A-T01", 1.0, slots, slots, 1.0, 2.0)
    return Specialist(env, spec)


def _task(task_id: int) -> Task:
    return Task(task_id, 0.0, "Test", "A", 10.0)


def test_start_and_end_book_busy_time_completions_and_errors() -> None:
    env = simpy.Environment()
    agent = _agent(env)
    first, second = _task(1), _task(2)
    first.start, second.start = 1.0, 2.0
    assert agent.start(first, 1.0) is True  # the first busy slot
    assert agent.start(second, 2.0) is False
    assert agent.status == "busy" and agent.busy_slots == 2
    assert agent.busy_slot_seconds(4.0) == (4.0 - 1.0) + (4.0 - 2.0)
    # The first task ends first: the search finds its own start, not the latest one.
    assert agent.end(first, 5.0, done=True) is False
    assert agent.current == [second] and agent.busy_since == [2.0]
    assert (agent.completed, agent.served_time, agent.busy_time) == (1, 4.0, 4.0)
    assert agent.end(second, 6.0, done=False) is True
    assert (agent.completed, agent.errors, agent.status) == (1, 1, "error")
    assert agent.busy_time == 4.0 + 4.0
    agent.rest()
    assert agent.status == "idle"


def test_rest_leaves_a_busy_agent_busy() -> None:
    env = simpy.Environment()
    agent = _agent(env)
    agent.start(_task(1), 0.0)
    agent.rest()
    assert agent.status == "busy"


def test_crash_strands_the_local_queue_and_stop_slots_books_the_time_served() -> None:
    env = simpy.Environment()
    agent = _agent(env)
    serving = _task(1)
    agent.start(serving, 1.0)
    agent.local.extend([_task(2), _task(3)])
    assert agent.crash() == 2
    assert agent.crashed and agent.status == "error"
    assert [t.id for t in agent.stranded] == [2, 3] and not agent.local
    assert agent.stop_slots("crash", 4.0) == 1
    assert (agent.busy_slots, agent.busy_since, agent.busy_time) == (0, [], 3.0)
    assert agent.current == [serving]  # left for the failover to rescue
    agent.forget_work()
    assert not agent.current and not agent.stranded and not agent.incoming


def test_draining_wakes_every_sleeping_slot() -> None:
    env = simpy.Environment()
    agent = _agent(env)
    wakes = [env.event(), env.event()]
    agent.idle.extend(wakes)
    agent.start_draining()
    assert agent.draining and not agent.idle
    assert all(w.triggered for w in wakes)


def test_a_sleeping_slot_takes_an_assigned_task_on_arrival() -> None:
    env = simpy.Environment()
    agent = _agent(env)
    got: list[tuple[float, object]] = []

    def slot() -> simpy.events.ProcessGenerator:
        agent.idle.append(wake := env.event())
        handed = yield wake
        got.append((env.now, handed))

    env.process(slot())
    env.run()
    task = _task(7)
    assert agent.assigned(task, 1.5) is True
    assert agent.incoming == {7: task}  # a crash on its way finds it here
    env.run()
    assert got == [(1.5, task)]


def test_a_busy_agent_queues_what_arrives_unless_it_was_taken_back() -> None:
    env = simpy.Environment()
    agent = _agent(env)
    first, second = _task(1), _task(2)
    assert agent.assigned(first, 2.0) is False  # no sleeping slot: the sender delivers it
    assert agent.assigned(second, 2.0) is False
    del agent.incoming[2]  # redistributed on its way (its agent's failure was detected)
    assert agent.arrived(first) and not agent.arrived(second)
    agent.queue(first)
    assert list(agent.local) == [first]
    agent.strand(second)
    assert agent.stranded == [second]
