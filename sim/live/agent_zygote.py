"""The agent process's zygote: imported once, forked once per agent.

Scenario: a live run's zone comes back from an outage, and 43 agent processes
start within seconds, after the 43 replacements that started when it went
dark. Each ``python -m sim.live.agent`` spends about 0.3 CPU-seconds on the
interpreter and its imports (nats-py alone is a third of it), and the provisioner
forked and exec'd each from the coordinator's own process, its event loop
blocked for the fork. On a two-core machine the full fleet's zone outage fell
5-30 s (scenario) behind its lag budget while the starts ran, the coordinator
handling stream messages late — the measurement, not the fleet, failed.

This process is started once per provisioner (``sim.live.agent_forks``) with
the agent's modules imported, and no thread or event loop of its own. It
reads one request per line on stdin (the agent's command-line arguments and
its log file), forks, and answers the child's pid on stdout. The child
becomes the agent as ``python -m sim.live.agent`` would — its own session,
stdin from /dev/null, stdout and stderr to its log, its own event loop — at
the cost of a fork of an already-warm interpreter. Children are reaped by
the kernel (SIGCHLD ignored here, restored in each child); the provisioner
watches each through a pidfd. Stdin closing ends the zygote, not its agents.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import traceback
from typing import Any

from sim.live.agent import add_agent_arguments, agent_main


def become_agent(request: dict[str, Any]) -> int:
    """In the forked child: the agent's process as ``python -m sim.live.agent`` sets it up."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    log = request.get("log")
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if log else null
    os.dup2(out, 1)
    os.dup2(out, 2)
    argv = [str(arg) for arg in request["argv"]]
    sys.argv = ["orchestra live agent", *argv]
    parser = argparse.ArgumentParser(prog="orchestra live agent")
    add_agent_arguments(parser)
    return agent_main(parser.parse_args(argv))


def _child(request: dict[str, Any]) -> None:
    """Run the agent and leave the process with its code, never returning to the zygote."""
    code = 1
    try:
        code = become_agent(request)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed log: nothing more to say
                stream.flush()
        os._exit(code)


def serve() -> int:
    """Fork an agent per request line until stdin closes."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the agents
    replies = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        replies.write(json.dumps({"pid": pid}) + "\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(serve())
