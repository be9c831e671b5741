"""The fleet commands (`edgezoo head`, `edgezoo agent`, `edgezoo devices`) and the `--on` / `--address` options of
`edgezoo profile` and `edgezoo run`. Ray is imported inside commands (profiles/fleet.py says how to install it)."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Callable, Optional

import typer

from app.cli_options import fail, int_at_least, int_in_range

DEFAULT_ADDRESS = "127.0.0.1:6379"
STOP_HINT = "Ctrl-C stops it"


def _bad(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """An option callback from a profiles.fleet check: its FleetError becomes a usage error (problem; fix)."""
    def callback(value: Any) -> Any:
        from profiles.fleet import FleetError

        if value is None:
            return None
        try:
            check(value)
        except FleetError as e:
            raise typer.BadParameter(f"{e.problem}; {e.fix}") from None
        return value
    return callback


def _names(value: str) -> str:
    from profiles.fleet import parse_names

    return ",".join(parse_names(value))


def _address(value: str) -> str:
    from profiles.fleet import parse_address

    return str(parse_address(value))


def _name(value: str) -> str:
    from profiles.fleet import check_name

    return check_name(value)


AddressOpt = typer.Option(DEFAULT_ADDRESS, "--address", envvar="EDGEZOO_FLEET_ADDRESS", callback=_bad(_address),
                          help="HOST:PORT of the fleet's Ray head (`edgezoo head`)")
OnOpt = typer.Option(None, "--on", callback=_bad(_names),
                     help="profile on these fleet devices (NAME,NAME...) instead of this machine (needs the fleet extra)")


def names(on: str | None) -> list[str]:
    from profiles.fleet import parse_names

    return parse_names(on) if on else []


# ------------------------------------------------------------------------------------------------ profile --on

def profile_on(store: Any, artifacts: list, on: str, address: str, runtime: str | None, threads: int,
               timeout: float, inputs: list | None,
               options: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], bool]:
    """`edgezoo profile --on`: every artifact on every named device; each record is stored as it arrives (here, on
    the head's side only). Returns the summary rows and whether any failed."""
    from models.errors import EdgeZooError
    from profiles.fleet import measure_on

    rows: list[dict[str, Any]] = []
    failed = False

    def keep(record: dict[str, Any]) -> None:
        nonlocal failed
        rows.append(store.rows("WHERE id=?", (store.add(record),))[0])
        if record["status"] == "failed":
            typer.echo(f"error: {record['artifact'].get('path')} on {record['device']['name']}: "
                       f"{record['error_class']}: {record['error_message']}", err=True)
            failed = True

    try:
        measure_on(artifacts, names(on), address, runtime, threads, options=options, timeout=timeout, inputs=inputs,
                   on_record=keep)
    except EdgeZooError as e:
        fail(e)
    return rows, failed


# ------------------------------------------------------------------------------------------------ head and agent

def _offered(runtimes: str | None) -> list[str] | None:
    from profiles.fleet import FleetError, runtimes_here

    if runtimes is None:
        return None
    here = runtimes_here()
    wanted = [r.strip() for r in runtimes.split(",") if r.strip()]
    missing = [r for r in wanted if r not in here]
    if not wanted or missing:
        raise FleetError(f"--runtimes {runtimes!r} names {', '.join(missing) or 'nothing'} this device cannot run",
                         f"pick from what it has: {', '.join(here) or 'none'}")
    return wanted


def _already_connected(address: str, name: str) -> None:
    """Refuse a name another connected device has: its measurements would land on either."""
    from profiles import fleet

    taken = {d["name"] for d in fleet.devices(address)}
    fleet.require_ray().shutdown()
    if name in taken:
        raise fleet.FleetError(f"a device named {name} is already connected to {address}",
                               "stop that agent first, or pick another --name")


def _start(ray: Any, params: dict[str, Any], head: bool, problem: str, fix: str) -> Any:
    """A Ray node in this process (as `ray start` makes one), its processes stopped when this command ends."""
    from profiles.fleet import FleetError

    try:
        return ray._private.node.Node(ray._private.parameter.RayParams(**params), head=head, shutdown_at_exit=True,
                                      spawn_reaper=True)
    except Exception as e:  # Ray's own start-up failures (port taken, version mismatch, unreachable GCS)
        raise FleetError(f"{problem} ({e.__class__.__name__}: {(str(e).strip().splitlines() or [''])[0][:200]})",
                         fix) from None


def _serve(node: Any, what: str) -> None:
    """Keep the Ray node running until Ctrl-C / SIGTERM, or until its processes stop."""
    try:
        while node.remaining_processes_alive():
            time.sleep(1.0)
    finally:
        node.kill_all_processes(check_alive=False, allow_graceful=True)
    fail(RuntimeError(f"{what}'s Ray processes stopped -> see the logs in {node.get_logs_dir_path()}"))


def _warn_open(host: str) -> None:
    from profiles.fleet import is_loopback

    if not is_loopback(host) and os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        typer.echo(f"note: {host} is reachable from other machines and Ray token authentication is off: anyone who "
                   "reaches it can run code here. Use a private network, or RAY_AUTH_MODE=token (profiles/FLEET.md)",
                   err=True)


def head(host: str = typer.Option("127.0.0.1", "--host", callback=_bad(lambda h: _address(f"{h}:1")),
                                  help="address the head binds (loopback unless you mean otherwise)"),
         port: int = typer.Option(6379, "--port", callback=int_in_range(1, 65535, 6379)),
         name: Optional[str] = typer.Option(None, "--name", callback=_bad(_name),
                                            help="also offer this machine as a device with this name"),
         num_cpus: int = typer.Option(1, "--num-cpus", callback=int_at_least(0, 1), max=4096,
                                      help="CPUs Ray may schedule here (measurements use a device's resource)")) -> None:
    """Start the fleet's Ray head here and keep it running (Ctrl-C stops it); devices join with `edgezoo agent`."""
    from profiles import fleet

    try:
        ray = fleet.require_ray()
        if fleet.is_loopback(host):
            fleet._loopback_mode(ray)
        params = {"node_ip_address": host, "gcs_server_port": port, "include_dashboard": False, "num_cpus": num_cpus,
                  **(fleet.node_options(name) if name else {})}
        node = _start(ray, params, True, f"the Ray head could not start on {host}:{port}",
                      "pick another --port or --host, or stop what uses it")
    except fleet.FleetError as e:
        fail(e)
    _warn_open(host)
    typer.echo(f"edgezoo head at {host}:{port}: devices join with `edgezoo agent --address {host}:{port} --name NAME`"
               f"; {STOP_HINT}", err=True)
    _serve(node, "the head")


def agent(address: str = typer.Option(..., "--address", callback=_bad(_address), help="the head's HOST:PORT"),
          name: str = typer.Option(..., "--name", callback=_bad(_name), help="this device's name in the fleet"),
          runtimes: Optional[str] = typer.Option(None, "--runtimes",
                                                 help="offer only these runtimes (default: every one installed here)"),
          num_cpus: Optional[int] = typer.Option(None, "--num-cpus", callback=int_at_least(1, 4), max=4096,
                                                 help="CPUs Ray may schedule here (default: all)"),
          node_ip: Optional[str] = typer.Option(None, "--node-ip", callback=_bad(lambda h: _address(f"{h}:1")),
                                                help="address the head reaches this device at (default: Ray's "
                                                     "choice; 127.0.0.1 for a head on loopback)")) -> None:
    """Join the fleet: this machine becomes device NAME (a custom Ray resource with its fingerprint: OS, chip,
    memory, runtimes) and measures what the head sends it, until Ctrl-C."""
    from profiles import fleet

    try:
        ray = fleet.require_ray()
        host, port = fleet.parse_address(address)
        offered = _offered(runtimes)
        fleet.reachable(host, port)
        if fleet.is_loopback(host):
            fleet._loopback_mode(ray)
            node_ip = node_ip or "127.0.0.1"
        elif sys.platform == "darwin":
            os.environ[fleet.LOOPBACK_ENV] = "1"  # Ray on macOS joins a multi-node cluster only when told it may
        _already_connected(f"{host}:{port}", name)
        options = fleet.node_options(name, offered)
        params = {"gcs_address": f"{host}:{port}", "num_cpus": num_cpus, **options,
                  **({"node_ip_address": node_ip} if node_ip else {})}
        node = _start(ray, params, False, f"device {name} could not join {address}",
                      "check that the head and this device run the same Ray and Python versions (profiles/FLEET.md)")
    except fleet.FleetError as e:
        fail(e)
    labels = options["labels"]
    typer.echo(f"device {name} joined {address} ({labels[fleet.LABEL + 'chip']}, runtimes "
               f"{labels[fleet.LABEL + 'runtimes'].replace('.', ', ')}); {STOP_HINT}", err=True)
    _serve(node, f"device {name}")


def devices(address: str = AddressOpt, as_json: bool = typer.Option(False, "--json")) -> None:
    """List the devices connected to the fleet's head now."""
    from profiles import fleet

    try:
        found = fleet.devices(address)
    except fleet.FleetError as e:
        fail(e)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    for d in found:
        typer.echo(f"{d['name']:<16} {d.get('address', '-'):<16} {d.get('os', '-')} {d.get('machine', '-')} "
                   f"{d.get('chip', '-')} {d.get('memory-gib', '-')} GiB  runtimes "
                   f"{str(d.get('runtimes', '-')).replace('.', ', ')}")
    if not found:
        typer.echo(f"no device is connected to {address}: start `edgezoo agent --address {address} --name NAME`")
