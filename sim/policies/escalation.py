"""What the hierarchy does with a failed task attempt: retry, escalate, or give up.

Spec section 3.1 puts a team lead over each team, a zone coordinator over the
team leads and the chief over the zones. A failed attempt (an error, a
timeout, a message that expired) is reported with ``TASK_FAILED`` to the team
lead, which retries on another agent of the category with exponential
backoff while its budget lasts; then it sends ``ESCALATION`` to the zone
coordinator, which tries its moves in order (another team, a bigger agent,
another zone); then to the chief, which re-dispatches to a zone not yet
tried. When every budget is spent the task fails for good, with the reason of
its last attempt.

The policy is a pure function of the task's history and of what the shell
reports as feasible right now (a move that cannot be made — no other team
has the category, no zone is left — is skipped, not wasted). Both shells feed
it the same records, so the live adapter's retries follow the simulator's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

__all__ = [
    "Action",
    "Decision",
    "EscalationConfig",
    "EscalationPolicy",
    "Feasible",
    "History",
    "ZoneMove",
]


class ZoneMove(StrEnum):
    """What a zone coordinator can do with an escalated task."""

    ANOTHER_TEAM = "another_team"
    BIGGER_AGENT = "bigger_agent"
    ANOTHER_ZONE = "another_zone"


class Action(StrEnum):
    RETRY = "retry"  # the team lead, on another agent of the category
    ZONE = "zone"  # ESCALATION to the zone coordinator, which makes one move
    CHIEF = "chief"  # ESCALATION on to the chief, which picks a zone not yet tried
    FAIL = "fail"  # every budget is spent


@dataclass(frozen=True, slots=True)
class EscalationConfig:
    """Budgets per level and the team lead's backoff (seconds)."""

    team_retries: int = 2
    backoff_s: float = 1.0
    backoff_factor: float = 2.0
    backoff_max_s: float = 60.0
    zone_moves: tuple[ZoneMove, ...] = (ZoneMove.ANOTHER_TEAM, ZoneMove.ANOTHER_ZONE)
    chief_retries: int = 1

    def __post_init__(self) -> None:
        if self.team_retries < 0 or self.chief_retries < 0:
            raise ValueError("retry budgets must be >= 0")
        if self.backoff_s < 0 or self.backoff_max_s < 0 or self.backoff_factor < 1:
            raise ValueError("expected backoff >= 0, backoff_max >= 0 and backoff_factor >= 1")

    @property
    def budget(self) -> int:
        """Re-dispatches in all: one failure more than this fails the task for good."""
        return self.team_retries + len(self.zone_moves) + self.chief_retries


@dataclass(frozen=True, slots=True)
class History:
    """What a task has been through; a fresh task has the empty history."""

    team_retries: int = 0
    zone_moves: int = 0  # moves of the configured list used (or skipped as infeasible)
    chief_retries: int = 0
    agents: tuple[str, ...] = ()  # agents whose attempt failed, oldest first
    zones: tuple[str, ...] = ()  # zones where an attempt failed, oldest first
    reasons: tuple[str, ...] = ()  # why each attempt failed

    def failed(self, agent: str, zone: str, reason: str) -> History:
        """This history with one more failed attempt on *agent* in *zone*."""
        zones = self.zones if zone in self.zones else (*self.zones, zone)
        return replace(
            self, agents=(*self.agents, agent), zones=zones, reasons=(*self.reasons, reason)
        )


@dataclass(frozen=True, slots=True)
class Feasible:
    """What the shell can do for the task right now (it knows the fleet; the policy does not)."""

    other_agents: bool = True  # an agent of the category in the zone that has not failed it
    other_team: bool = True  # ... in a team none of whose members has failed it
    bigger_agent: bool = True  # ... faster than the ones that failed it
    other_zone: bool = True  # a zone with the category where it has not failed
    any_zone: bool = True  # a zone with the category at all (the chief's last resort)


@dataclass(frozen=True, slots=True)
class Decision:
    """The next step for the task, and its history after taking it."""

    action: Action
    history: History
    delay_s: float = 0.0  # the team lead's backoff before a retry
    move: ZoneMove | None = None  # the zone coordinator's move
    reason: str = ""  # FAIL: why the task fails for good
    skipped: tuple[ZoneMove, ...] = field(default_factory=tuple)  # infeasible moves passed over


class EscalationPolicy:
    """The team lead's, zone coordinator's and chief's rules, in that order."""

    def __init__(self, config: EscalationConfig | None = None) -> None:
        self.config = config or EscalationConfig()

    def backoff(self, retry: int) -> float:
        """The wait before the *retry*-th team retry (1-based): exponential, capped."""
        cfg = self.config
        return float(min(cfg.backoff_max_s, cfg.backoff_s * cfg.backoff_factor ** (retry - 1)))

    def on_failure(
        self, history: History, agent: str, zone: str, reason: str, feasible: Feasible
    ) -> Decision:
        """The attempt on *agent* in *zone* failed for *reason*: what now?"""
        cfg = self.config
        history = history.failed(agent, zone, reason)
        if history.team_retries < cfg.team_retries and feasible.other_agents:
            used = history.team_retries + 1
            return Decision(
                Action.RETRY,
                replace(history, team_retries=used),
                delay_s=self.backoff(used),
            )
        skipped: list[ZoneMove] = []
        moves = history.zone_moves
        while moves < len(cfg.zone_moves):
            move = cfg.zone_moves[moves]
            moves += 1
            if _can(move, feasible):
                return Decision(
                    Action.ZONE,
                    replace(
                        history,
                        team_retries=cfg.team_retries,  # the team's budget is spent or moot
                        zone_moves=moves,
                    ),
                    move=move,
                    skipped=tuple(skipped),
                )
            skipped.append(move)
        history = replace(history, team_retries=cfg.team_retries, zone_moves=moves)
        if history.chief_retries < cfg.chief_retries and feasible.any_zone:
            return Decision(
                Action.CHIEF,
                replace(history, chief_retries=history.chief_retries + 1),
                skipped=tuple(skipped),
            )
        return Decision(Action.FAIL, history, reason=reason, skipped=tuple(skipped))


def _can(move: ZoneMove, feasible: Feasible) -> bool:
    if move is ZoneMove.ANOTHER_TEAM:
        return feasible.other_team
    if move is ZoneMove.BIGGER_AGENT:
        return feasible.bigger_agent
    return feasible.other_zone
