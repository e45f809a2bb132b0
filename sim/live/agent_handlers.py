"""What an agent does with a task: the handlers ``--handler`` names.

``sleep`` (the task's drawn work divided by speed and time scale; a task
declaring model calls makes them under the fleet's limits), ``noop`` (returns
at once: benchmarks of the coordinator), ``command:TEMPLATE`` (a shell command
formatted with the task's fields, quoted), or ``module:function`` (a Python
callable taking the task dict; may be async). A handler returns whether the
attempt succeeded; one that raises fails it.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import shlex
from collections.abc import Awaitable, Callable
from typing import Any

from sim.live.agent_config import AgentConfig
from sim.live.llm_calls import run_declared_calls

Handler = Callable[[dict[str, Any]], Awaitable[bool]]


def make_handler(spec: str, config: AgentConfig) -> Handler:
    """The handler named by *spec* (see the module docstring)."""
    if spec == "sleep":

        async def sleep(task: dict[str, Any]) -> bool:
            if "llm" in task:  # model calls under the fleet's limits, then tool time
                await run_declared_calls(task, config.speed, config.time_scale)
                return True
            await asyncio.sleep(float(task["work_s"]) / config.speed / config.time_scale)
            return True

        return sleep
    if spec == "noop":

        async def noop(task: dict[str, Any]) -> bool:
            return True

        return noop
    if spec.startswith("command:"):
        template = spec.removeprefix("command:")

        async def command(task: dict[str, Any]) -> bool:
            fields = {k: shlex.quote(str(v)) for k, v in task.items()}
            process = await asyncio.create_subprocess_shell(template.format(**fields))
            return await process.wait() == 0

        return command
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ValueError(
            f"--handler: expected sleep, noop, command:TEMPLATE or module:function, got {spec!r}"
        )
    function = getattr(importlib.import_module(module_name), function_name)

    async def call(task: dict[str, Any]) -> bool:
        if inspect.iscoroutinefunction(function):
            result = await function(task)
        else:
            result = await asyncio.to_thread(function, task)
        return result is not False

    return call
