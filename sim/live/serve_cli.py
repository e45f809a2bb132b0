"""``orchestra live serve``, ``live submit`` and ``live status``: the service's commands.

Credentials are never options with secrets in them (``ps`` shows command
lines): a token, user and password come from the environment
(sim.live.credentials); ``--creds`` and ``--tls-ca`` name files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sim.cli_support import UserError, duration_option

if TYPE_CHECKING:
    from sim.live.retention import RetentionSettings


def _broker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nats", required=True, help="broker URL (nats:// or tls://)")
    credential_arguments(parser)


def credential_arguments(parser: argparse.ArgumentParser) -> None:
    """The credential files and the anonymous opt-in (secrets come from the environment)."""
    parser.add_argument("--creds", type=Path, help="NATS .creds file (JWT + NKey seed)")
    parser.add_argument("--tls-ca", type=Path, help="CA bundle for a tls:// broker")
    parser.add_argument(
        "--allow-anonymous",
        action="store_true",
        help="reach a broker off this host without credentials (closed by default)",
    )


def add_service_commands(live_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = live_sub.add_parser("serve", help="the coordinator as a service in front of a fleet")
    serve.add_argument("scenario", type=Path, help="policies, pools and health settings")
    _broker_arguments(serve)
    serve.add_argument("--name", help="this replica's name (default serve-HOST-XXXX)")
    serve.add_argument(
        "--provisioner",
        choices=("none", "local", "command"),
        default="none",
        help="none: recommend scaling only; local: agent processes here; command: templates",
    )
    serve.add_argument("--start-command", help="shell template starting an agent ({agent_id} ...)")
    serve.add_argument("--stop-command", help="shell template stopping an agent")
    serve.add_argument(
        "--handler",
        dest="agent_handler",
        default="sleep",
        help="handler of agents the local provisioner starts",
    )
    serve.add_argument("--webhook", help="URL alerts and scaling recommendations POST to")
    serve.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on 127.0.0.1")
    serve.add_argument("--records", type=Path, help="directory of the continuous records")
    serve.add_argument("--segment", default="1h", help="length of one records segment (e.g. 1h)")
    serve.add_argument("--lease", type=float, default=1.5, help="lease seconds (failover time)")
    serve.add_argument("--drain", type=float, default=60.0, help="seconds a SIGTERM drain waits")
    serve.add_argument(
        "--compact-every",
        default="5m",
        help="how often the primary compacts its streams into a snapshot (0: never)",
    )
    serve.add_argument(
        "--retain", default="1h", help="records younger than this always stay on the broker"
    )
    serve.add_argument(
        "--dedupe",
        default="6h",
        help="how long a finished task or job id is recognised after compaction",
    )
    serve.add_argument(
        "--clock-skew",
        default="2m",
        help="how far clients' clocks may lag (a segment reads back this far)",
    )
    serve.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    serve.set_defaults(handler=_cmd_serve)

    submit = live_sub.add_parser("submit", help="submit tasks (JSON lines) and print results")
    submit.add_argument("file", nargs="?", default="-", help="JSON lines file (default stdin)")
    _broker_arguments(submit)
    submit.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for results")
    submit.set_defaults(handler=_cmd_submit)

    status = live_sub.add_parser("status", help="terminal dashboard of a running service")
    _broker_arguments(status)
    status.add_argument("--once", action="store_true", help="print one frame and exit")
    status.set_defaults(handler=_cmd_status)


def check_credentials(args: argparse.Namespace) -> str | None:
    """Check and export the broker credentials; the token (from the environment) if any."""
    from sim.live.credentials import Auth, CredentialError, export, require

    for flag, path in (("--creds", args.creds), ("--tls-ca", args.tls_ca)):
        if path is not None and not path.is_file():
            raise UserError(f"{flag}: {path}: file not found")
    export(args.creds, args.tls_ca)
    auth = Auth.from_env()
    try:
        warning = require(args.nats, auth, allow_anonymous=args.allow_anonymous)
        auth.connect_options(args.nats)
    except CredentialError as exc:
        raise UserError(str(exc)) from None
    if warning:
        print(warning, file=sys.stderr)
    return auth.token


def _cmd_serve(args: argparse.Namespace) -> int:
    from sim.live.cancel import run_bounded
    from sim.live.serve import ServeOptions, serve
    from sim.live.transport import LiveError
    from sim.scenario.load import load_scenario

    token = check_credentials(args)
    segment_s = duration_option("--segment", args.segment)
    if not segment_s > 0:
        raise UserError(f"--segment: expected a positive duration, got {args.segment}")
    if args.lease <= 0 or args.drain < 0:
        raise UserError("--lease / --drain: expected positive seconds")
    if args.provisioner == "command" and not args.start_command:
        raise UserError("--start-command: expected a template with --provisioner command")
    retention = retention_settings(args)
    scenario = load_scenario(args.scenario, list(args.overrides))
    options = ServeOptions(
        url=args.nats,
        token=token,
        name=args.name,
        provisioner=args.provisioner,
        start_command=args.start_command,
        stop_command=args.stop_command,
        handler=args.agent_handler,
        webhook_url=args.webhook,
        metrics_port=args.metrics_port,
        records_dir=args.records,
        segment_s=segment_s,
        lease_s=args.lease,
        drain_s=args.drain,
        retention=retention,
    )
    try:
        return run_bounded(serve(scenario, options))
    except (LiveError, ValueError) as exc:
        raise UserError(str(exc)) from None


def retention_settings(args: argparse.Namespace) -> RetentionSettings:
    """The retention flags as settings; a bad one is a one-line error."""
    from sim.live.retention import RetentionSettings

    values = {}
    for flag, name, text in (
        ("--compact-every", "every_s", args.compact_every),
        ("--retain", "retain_s", args.retain),
        ("--dedupe", "dedupe_s", args.dedupe),
        ("--clock-skew", "skew_s", args.clock_skew),
    ):
        seconds = duration_option(flag, text)
        if seconds < 0:
            raise UserError(f"{flag}: expected a duration of 0 or more, got {text}")
        values[name] = seconds
    if values["every_s"] > 0 and values["dedupe_s"] <= 0:
        raise UserError(f"--dedupe: expected a positive duration, got {args.dedupe}")
    return RetentionSettings(**values)


def read_submissions(handle: TextIO, source: str) -> list[dict[str, Any]]:
    """Every JSON line of *handle*, checked; a bad one is a one-line error naming its line."""
    from sim.live.task_message import InvalidMessage, validate

    out = []
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            if isinstance(doc, dict):
                doc.setdefault("arrival_s", 0.0)  # checked here; stamped when sent
                validate(doc)
                del doc["arrival_s"]
            else:
                validate(doc)
        except json.JSONDecodeError as exc:
            raise UserError(f"{source}:{number}: expected a JSON object ({exc.msg})") from None
        except InvalidMessage as exc:
            raise UserError(f"{source}:{number}: {exc}") from None
        out.append(doc)
    return out


def _cmd_submit(args: argparse.Namespace) -> int:
    from sim.live.cancel import run_bounded
    from sim.live.transport import LiveError

    token = check_credentials(args)
    if args.file == "-":
        documents = read_submissions(sys.stdin, "<stdin>")
    else:
        path = Path(args.file)
        if not path.is_file():
            raise UserError(f"{path}: file not found")
        with path.open() as handle:
            documents = read_submissions(handle, str(path))
    try:
        missing = run_bounded(_submit(args.nats, token, documents, args.timeout))
    except LiveError as exc:
        raise UserError(str(exc)) from None
    if missing:
        print(f"live submit: {missing} results not received in {args.timeout:g} s", file=sys.stderr)
        return 1
    return 0


async def _submit(
    url: str, token: str | None, documents: list[dict[str, Any]], timeout_s: float
) -> int:
    """Submit every document, print each result as a JSON line as it comes; results missing."""
    from sim.live.client import SubmitClient

    async with await SubmitClient.connect(url, token, "orchestra-submit") as client:
        for document in documents:
            await client.submit(document)
        # A resubmitted id in the file is the same task: one result.
        expected = len({(d["kind"], d.get("task_id", d.get("job_id"))) for d in documents})
        received = 0
        try:
            async with asyncio.timeout(timeout_s):
                async for result in client.results(expected):
                    print(json.dumps(result.document(), sort_keys=True), flush=True)
                    received += 1
        except TimeoutError:
            pass
        return expected - received


def _cmd_status(args: argparse.Namespace) -> int:
    from sim.live.cancel import run_bounded
    from sim.live.status import watch
    from sim.live.transport import LiveError

    token = check_credentials(args)
    try:
        return run_bounded(watch(args.nats, token, once=args.once))
    except KeyboardInterrupt:
        return 0
    except LiveError as exc:
        raise UserError(str(exc)) from None
