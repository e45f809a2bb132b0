"""The chiefs' network and disks, the two collaborators the control plane asks about time."""

from __future__ import annotations

import numpy as np
import pytest

from sim.model.chief_disks import ChiefDisks
from sim.model.chief_network import ChiefNetwork
from sim.scenario.network import Network


def test_a_partition_and_a_one_way_cut_block_only_what_they_name() -> None:
    links = ChiefNetwork(Network(), np.random.default_rng(0))
    assert links.intact and links.connected(1, 2)
    links.partition([{1}, {2, 3}])
    assert not links.connected(1, 2) and not links.connected(2, 1)
    assert links.connected(2, 3) and links.connected(1, 1)
    links.heal()
    links.cut({(1, 2)})
    assert not links.intact
    assert not links.connected(1, 2) and links.connected(2, 1)
    links.restore({(1, 2)})
    assert links.intact and links.connected(1, 2)


def test_a_message_takes_half_the_rtt_on_average_and_nothing_with_latency_off() -> None:
    links = ChiefNetwork(Network(intra_region_rtt_ms=2.0, jitter_cv=0.5), np.random.default_rng(1))
    delays = np.array([links.delay() for _ in range(4000)])
    # Mean-one lognormal jitter with cv 0.5: the sample mean's standard error is 0.5/sqrt(n).
    assert delays.mean() == pytest.approx(0.001, rel=5 * 0.5 / np.sqrt(len(delays)))
    off = ChiefNetwork(Network(enabled=False), np.random.default_rng(1))
    assert off.one_way_s == 0.0 and off.delay() == 0.0


def test_writes_queue_one_fsync_each_and_a_stall_keeps_the_loop_serial_until_drained() -> None:
    disks = ChiefDisks([1, 2], fsync_s=0.001)
    assert disks.write(1, 10.0, must_sync=True) == pytest.approx(10.001)
    assert disks.write(1, 10.0, must_sync=True) == pytest.approx(10.002)
    assert disks.write(1, 10.0, must_sync=False) == pytest.approx(10.002)
    assert not disks.serial(1, 10.0)
    disks.stall(2, 3.0)
    assert disks.any_stalled and disks.serial(2, 10.0)
    assert disks.write(2, 10.0, must_sync=True) == pytest.approx(13.0)
    disks.unstall(2, 11.0)
    assert not disks.any_stalled
    assert disks.serial(2, 12.0)  # the stalled write is still on the disk
    assert not disks.serial(2, 13.0)
