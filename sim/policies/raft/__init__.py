"""Raft consensus for the chief coordinators, as a pure state machine.

The chief coordinators (3, 5 or 7 of them) replicate their decisions with
Raft. This package holds only the algorithm, in etcd raft's shape: a
:class:`RaftNode` that is ticked, stepped with messages and asked for a
:class:`Ready` of work (persist, send, apply) that the shell carries out.
Transport, disk and time belong to the shells (the SimPy model, the live
adapter, the tests' synchronous network); nothing here imports SimPy,
asyncio or NATS, and randomness comes from an injected numpy Generator.
"""

from sim.policies.raft.log import RaftLog
from sim.policies.raft.messages import (
    LOCAL_KINDS,
    RESPONSE_KINDS,
    Entry,
    HardState,
    Message,
    MessageKind,
)
from sim.policies.raft.node import RaftNode
from sim.policies.raft.progress import Progress, ProgressState, Tracker, VoteResult, quorum_index
from sim.policies.raft.records import InvalidTransition, Ready, Role, RoleChange
from sim.policies.raft.storage import MemoryStorage, Storage

__all__ = [
    "LOCAL_KINDS",
    "RESPONSE_KINDS",
    "Entry",
    "HardState",
    "InvalidTransition",
    "MemoryStorage",
    "Message",
    "MessageKind",
    "Progress",
    "ProgressState",
    "RaftLog",
    "RaftNode",
    "Ready",
    "Role",
    "RoleChange",
    "Storage",
    "Tracker",
    "VoteResult",
    "quorum_index",
]
