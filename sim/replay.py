"""Replaying failures: the chaos a run recorded, played again against a scenario.

Every chaos event a run injects is logged in ``events.parquet`` as it
happened — time, action, and the agents it actually hit (selectors resolved
to ids). Replaying that log against the same scenario and seed reproduces
the run exactly; replaying it against a changed scenario (another policy,
another fleet) answers "what if that day had happened with this setting?".
Random chaos is switched off in a replay: its failures are already in the log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from sim.scenario.schema import ChaosEvent, RandomChaos, Scenario


class ReplayError(Exception):
    """An event log that cannot be replayed; one line for the user."""


def load_events(path: Path) -> pd.DataFrame:
    """``events.parquet``, given the file or the run directory holding it."""
    file = path / "events.parquet" if path.is_dir() else path
    if not file.exists():
        raise ReplayError(f"{file}: file not found (expected a run's events.parquet)")
    try:
        frame = pd.read_parquet(file)
    except Exception as exc:  # a broken file is the user's input, reported in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReplayError(f"{file}: expected an events.parquet table ({first})") from None
    missing = {"time_s", "kind", "subject", "detail"} - set(frame.columns)
    if missing:
        raise ReplayError(f"{file}: {sorted(missing)[0]}: expected the event log's columns")
    return frame


def chaos_from_events(
    events: pd.DataFrame, replication: int = 0, source: str = "events"
) -> list[ChaosEvent]:
    """The chaos timeline recorded in *events* (one replication), as scenario entries.

    A ``join`` plays when its agent joined (its ``agent_joined``), not when it
    was started: live's process takes its start-up first, the simulator's
    joining agent none.
    """
    if "replication" in events.columns:
        events = events[events["replication"] == replication]
    joins = events[events["kind"] == "agent_joined"].drop_duplicates("subject")  # the first
    joined = dict(zip(joins["subject"].astype(str), joins["time_s"], strict=True))
    timeline = []
    for index, row in enumerate(events[events["kind"] == "chaos"].itertuples(index=False)):
        try:
            document = json.loads(str(row.detail))["event"]
            agent = (document.get("join") or {}).get("agent")
            if agent in joined and float(joined[agent]) >= float(document["at"]):
                document["at"] = float(joined[agent])
            timeline.append(ChaosEvent.model_validate(document))
        except (ValueError, KeyError, ValidationError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise ReplayError(
                f"{source}: chaos event {index}: cannot be replayed ({first})"
            ) from None
    return timeline


def replay_scenario(scenario: Scenario, timeline: list[ChaosEvent]) -> Scenario:
    """*scenario* with its failures replaced by *timeline*."""
    purchase = scenario.purchase
    if purchase.spot is not None:
        # Random spot reclaims are in the log as chaos entries: do not draw them again.
        quiet = purchase.spot.model_copy(update={"reclaim_rate": 0.0, "zone_reclaim_mtbf": None})
        purchase = purchase.model_copy(update={"spot": quiet})
    return scenario.model_copy(
        update={
            "chaos": timeline,
            "chaos_random": RandomChaos(enabled=False),
            "purchase": purchase,
        }
    )
