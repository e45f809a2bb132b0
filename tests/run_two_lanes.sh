#!/usr/bin/env bash
# The suite in two lanes, run side by side (`make test` calls this).
#
# Live lane: tests/live, one test at a time at normal priority. Each is a
# nats-server, coordinators and agents on the wall clock; they need little CPU
# (about a third of a core) but need it on time, or their lag reads as agent
# death. Two files at a time (xdist --dist loadfile) halved the lane (522 s ->
# 265-312 s) but failed one fresh-clone run in four: at x100 the coordinator's
# lag went over budget, and a zone outage's mark came late. Not until those
# tests have the headroom for a neighbour.
# Simulator lane: everything else on every core, at nice 19 and the idle I/O
# class, so it takes all the CPU and disk the live lane leaves idle and yields
# them the moment a live test wakes. (At nice 10 a fresh-clone CI run still saw a
# live agent's 1 s wall sleep last 1.46 s, and a chaos event 0.15 s late.)
# One after the other the suite took ~10.5 min on 2 cores; side by side it
# takes about as long as its longer lane. The type check (TYPECHECK) runs
# beside them at the simulator lane's priorities: 30 s off the critical path.
# xdist deals a module's tests to both workers, so a costly module fixture is built
# on each unless it is shared: the Raft elections (25-41 s) are run by the first worker
# to ask and read by the other (tests/validation/test_raft_election.py). (--dist
# loadgroup would keep a module on one worker, but with pytest 9 and xdist 3.8 it
# groups nothing.)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NPROC=${NPROC:-$(nproc 2>/dev/null || echo 2)}
mkdir -p test-output
live_log=test-output/live-lane.log

"$PY" -m pytest tests/live -q --durations=10 >"$live_log" 2>&1 &
live_pid=$!
# Lowest CPU priority, and idle-class I/O where ionice exists (util-linux).
BACKGROUND=(nice -n 19)
if command -v ionice >/dev/null 2>&1 && ionice -c 3 true 2>/dev/null; then
    BACKGROUND+=(ionice -c 3)
fi
# The type check, if asked for (TYPECHECK, a command), at the simulator lane's priority.
type_rc=0
if [ -n "${TYPECHECK:-}" ]; then
    "${BACKGROUND[@]}" $TYPECHECK >test-output/typecheck.log 2>&1 &
    type_pid=$!
fi
"${BACKGROUND[@]}" "$PY" -m pytest --ignore=tests/live -n "$NPROC" -q --durations=20
sim_rc=$?
if [ -n "${TYPECHECK:-}" ]; then
    wait "$type_pid"
    type_rc=$?
    echo
    echo "=== type check ($TYPECHECK) ==="
    cat test-output/typecheck.log
fi
wait "$live_pid"
live_rc=$?
echo
echo "=== live lane (tests/live, one at a time) ==="
cat "$live_log"
echo "simulator lane exit $sim_rc, live lane exit $live_rc, type check exit $type_rc"
exit $((sim_rc != 0 || live_rc != 0 || type_rc != 0))
