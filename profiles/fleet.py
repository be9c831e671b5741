"""Profiling on other devices through Ray (the optional `fleet` extra: `pip install 'edgezoo[fleet]'`).

A device joins the head's Ray cluster with `edgezoo agent` (app/cli_agent.py) and advertises the custom resource
`edgezoo-device-NAME` (one unit: Ray's scheduler runs one measurement at a time on it) and node labels with its
fingerprint (OS, chip, memory, the runtimes it can run). `measure_on` ships each artifact's bytes through Ray's
object store, and on the device a Ray task unpacks them, checks their sha256 against the manifest and runs the same
`profiles.measure.measure` as a local profile (a fresh child per measurement). Records come back to the caller,
which alone writes the results store. A device that disappears gives a failure record naming it; the others go on.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import ipaddress
import os
import re
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from exporters.artifact import EVAL_DATA, MANIFEST, Artifact
from models.errors import EdgeZooError
from profiles import record as R
from profiles.launcher import interrupted_result
from profiles.measure import Scenario, base_record, measure, request_key, settings
from profiles.runtimes import DEFAULT_RUNTIME, RUNTIMES, resolve

RESOURCE_PREFIX = "edgezoo-device-"  # + NAME: the custom resource a device advertises (one unit)
LABEL = "edgezoo.dev/"  # prefix of the node labels that carry a device's fingerprint
NAMESPACE = "edgezoo"
NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,38}[A-Za-z0-9])?")
BACKENDS = {"torch": "torch", "onnxruntime": "onnxruntime", "mlx": "mlx", "coreml": "coremltools"}  # runtime -> pkg
SHIP_SLACK_S = 120.0  # beyond the child's timeout: unpacking, the worker's start and the way back
POLL_S = 1.0  # how often the head checks that the devices it waits for are still connected
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray takes 127.0.0.1 as this node's address


class FleetError(EdgeZooError):
    pass


# ------------------------------------------------------------------------------------------------ names, addresses

def require_ray() -> Any:
    """The `ray` module, or a FleetError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise FleetError("Ray is not installed, so no device can be reached",
                         "install the fleet extra: pip install 'edgezoo[fleet]' (here and on every device)") from None
    return ray


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise FleetError(f"device name {name!r} is not 1-40 letters, digits, '.', '_' or '-' (starting and ending "
                         "with a letter or digit)", "pass e.g. --name pi5-a")
    return name


def parse_names(text: str) -> list[str]:
    """`--on NAME[,NAME]`: distinct, valid device names."""
    names = [n.strip() for n in str(text).split(",")]
    if not all(names) or len(set(names)) != len(names):
        raise FleetError(f"--on {text!r} has an empty or repeated device name", "pass distinct names, e.g. --on pi5,mac")
    return [check_name(n) for n in names]


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets, [::1]:6379) with a port from 1 to 65535."""
    host, sep, port = str(text).strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or any(c.isspace() for c in host) or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise FleetError(f"address {text!r} is not HOST:PORT", "pass the head's address, e.g. --address 127.0.0.1:6379")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resource(name: str) -> str:
    return RESOURCE_PREFIX + check_name(name)


# ------------------------------------------------------------------------------------------------ what a device offers

def runtimes_here() -> list[str]:
    """The registered runtimes this machine can run: its package is installed and the platform allows it."""
    found = []
    for name in RUNTIMES:
        if importlib.util.find_spec(BACKENDS.get(name, name)) is None:
            continue
        try:
            if resolve(name).unavailable_here() is None:
                found.append(name)
        except Exception:  # a runtime module that does not import here is not offered
            continue
    return found


def _label_value(text: Any) -> str:
    """A Ray label value: at most 63 of [A-Za-z0-9._-], starting and ending with a letter or digit."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text))[:63].strip("-._") or "unknown"


def node_labels(name: str, runtimes: list[str] | None = None) -> dict[str, str]:
    """The labels a device's node advertises: its name, fingerprint and runtimes (what the Devices page lists)."""
    from profiles.device import fingerprint

    fp = fingerprint()
    memory = fp.get("memory_bytes")
    offered = runtimes_here() if runtimes is None else runtimes
    return {f"{LABEL}name": check_name(name), f"{LABEL}fingerprint": fp["id"], f"{LABEL}os": _label_value(fp["system"]),
            f"{LABEL}machine": _label_value(fp["machine"]), f"{LABEL}chip": _label_value(fp["cpu"]),
            f"{LABEL}cores": str(fp.get("logical_cores") or 0),
            f"{LABEL}memory-gib": f"{memory / 2**30:.1f}" if memory else "unknown",
            f"{LABEL}runtimes": ".".join(offered) or "none"}


def node_options(name: str, runtimes: list[str] | None = None) -> dict[str, Any]:
    """Ray node settings of a device: its custom resource and labels (the agent's, and the tests' cluster nodes')."""
    return {"resources": {resource(name): 1.0}, "labels": node_labels(name, runtimes)}


# ------------------------------------------------------------------------------------------------ connecting

def _loopback_mode(ray: Any) -> None:
    """Ray swaps a loopback address for the machine's outward one unless told it runs on loopback alone; a head
    bound to 127.0.0.1 (the default) is then unreachable, so say so for this process and the workers it starts."""
    os.environ[LOOPBACK_ENV] = "0"
    ray._private.ray_constants.ENABLE_RAY_CLUSTER = False


def reachable(host: str, port: int) -> None:
    """Fail fast (FleetError) when nothing listens at host:port, rather than wait out Ray's own retries."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=5):
            pass
    except OSError as e:
        raise FleetError(f"no Ray head answers at {host}:{port} ({e.strerror or e})",
                         "start it with `edgezoo head` on that machine, or check --address and the network") from None


def connect(address: str) -> Any:
    """Connect this process to the head at HOST:PORT (once per address); returns the `ray` module."""
    host, port = parse_address(address)
    ray = require_ray()
    if ray.is_initialized():
        if ray.get_runtime_context().gcs_address in (address, f"{host}:{port}"):
            return ray
        ray.shutdown()
    reachable(host, port)
    if is_loopback(host):
        _loopback_mode(ray)
    try:
        ray.init(address=f"{host}:{port}", namespace=NAMESPACE, log_to_driver=False, logging_level="WARNING",
                 configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:  # something listens there, but no Ray head we may use
        raise FleetError(f"the Ray head at {address} refused or did not answer this connection "
                         f"({(str(e).strip().splitlines() or [''])[0][:200]})",
                         "check --address, that this machine runs the head's Ray and Python versions, and, with token "
                         "authentication on, that RAY_AUTH_MODE=token and the head's token (RAY_AUTH_TOKEN or "
                         "~/.ray/auth_token) are set here too (profiles/FLEET.md)") from None
    return ray


def _devices(ray: Any) -> dict[str, dict[str, Any]]:
    """{name: device} for the connected nodes that advertise a device resource."""
    found: dict[str, dict[str, Any]] = {}
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        labels = node.get("Labels") or {}
        for res in node.get("Resources") or {}:
            if res.startswith(RESOURCE_PREFIX):
                name = res[len(RESOURCE_PREFIX):]
                facts = {k[len(LABEL):]: v for k, v in labels.items() if k.startswith(LABEL)}
                facts.pop("name", None)
                found[name] = {"name": name, "node_id": node["NodeID"], "address": node.get("NodeManagerAddress"),
                               **facts}
    return found


def devices(address: str) -> list[dict[str, Any]]:
    """The devices connected to the head now: name, node id, address, fingerprint, os, chip, memory, runtimes."""
    return sorted(_devices(connect(address)).values(), key=lambda d: d["name"])


# ------------------------------------------------------------------------------------------------ shipping

def pack(artifact: Artifact) -> bytes:
    """The files a measurement needs (the model file or bundle, the manifest, the held-out eval data) as a tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(artifact.model_file, arcname=artifact.manifest["model_file"])
        if (artifact.path / EVAL_DATA).is_file() and not artifact.manifest.get("foreign"):
            tar.add(artifact.path / EVAL_DATA, arcname=EVAL_DATA)
    return buf.getvalue()


def _unpack(blob: bytes, manifest: dict[str, Any], folder: Path) -> Artifact:
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        try:
            tar.extractall(folder, filter="data")  # refuses absolute paths, links out and device files
        except TypeError:  # Python before 3.11.4: the same refusal by hand
            if any(m.name.startswith("/") or ".." in Path(m.name).parts or not (m.isfile() or m.isdir())
                   for m in tar.getmembers()):
                raise FleetError("the shipped artifact holds a path outside its folder or a link",
                                 "re-export the artifact; it must hold plain files only") from None
            tar.extractall(folder)
    import json

    (folder / MANIFEST).write_text(json.dumps(manifest))
    return Artifact(folder, manifest)


def _on_device(name: str, blob: bytes, manifest: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """Runs on the device (a Ray task): unpack, then the same measurement as a local profile (sha256 checked there)."""
    import ray

    labels = ray.get_runtime_context().get_node_labels()
    offered = str(labels.get(f"{LABEL}runtimes", "")).split(".")
    runtime, scenario = request["runtime"], Scenario(**request["scenario"])
    with tempfile.TemporaryDirectory(prefix="edgezoo-fleet-") as tmp:
        artifact = _unpack(blob, manifest, Path(tmp))
        if runtime in RUNTIMES and runtime not in offered:
            base = base_record(artifact, runtime, request["threads"], scenario, "")
            return base.updated(R.failure("unavailable", "RuntimeUnavailable",
                                          f"device {name} has no {runtime} runtime (it offers "
                                          f"{', '.join(o for o in offered if o) or 'none'})")).to_dict()
        return measure(artifact, runtime, request["threads"], scenario, request["options"], request["timeout"],
                       request["inputs"])


# ------------------------------------------------------------------------------------------------ the head's side

@dataclasses.dataclass
class _Job:
    artifact: Artifact
    device: dict[str, Any]
    runtime: str
    key: str


def _device_part(record: dict[str, Any], device: dict[str, Any]) -> dict[str, Any]:
    """The measured device: the fingerprint the device reported (or its labels), named by its fleet name."""
    measured = dict(record.get("device") or {})
    hardware = measured.get("id") or device.get("fingerprint")
    return {**measured, "id": f"{device['name']}@{hardware}", "name": device["name"], "hardware_id": hardware,
            "fleet": {k: v for k, v in device.items() if k != "name"}}


def _finish(record: dict[str, Any], job: _Job) -> dict[str, Any]:
    """A device's record as the head stores it: the head's artifact path, the fleet cache key, the named device."""
    record = dict(record)
    record["artifact"] = {**(record.get("artifact") or {}), "path": str(job.artifact.path)}
    record["cache_key"], record["device"] = job.key, _device_part(record, job.device)
    return R.validated(record)


def _failed(job: _Job, threads: int, scenario: Scenario, result: dict[str, Any]) -> dict[str, Any]:
    base = base_record(job.artifact, job.runtime, threads, scenario, job.key).to_dict()
    base.pop("device", None)
    return _finish(R.Record.from_dict(base).updated(result).to_dict(), job)


def _lost(job: _Job, err: BaseException | None) -> dict[str, Any]:
    why = f" ({err.__class__.__name__}: {(str(err).strip().splitlines() or [''])[0][:200]})" if err else ""
    return R.failure("failed", "DeviceLost",
                     f"device {job.device['name']} disappeared while profiling {job.artifact.model_file.name}{why}; "
                     f"the other devices went on: rerun with --on {job.device['name']} once its agent is back")


def fleet_key(artifact: Artifact, runtime: str, threads: int, scenario: Scenario, options: dict[str, Any],
              device: dict[str, Any]) -> str:
    """The cache key of a measurement on a named device (reused like a local one, never mixed with another's)."""
    return request_key(artifact, runtime, threads, scenario, options, device=f"{device['name']}@{device['fingerprint']}")


def plan(artifacts: list[Artifact], names: list[str], address: str, runtime: str | None = None, threads: int = 2,
         scenario: Scenario | None = None, options: dict[str, Any] | None = None) -> list[_Job]:
    """One job per (artifact, device); every device must be connected now."""
    ray = connect(address)
    found = _devices(ray)
    missing = [n for n in names if n not in found]
    if missing:
        raise FleetError(f"no device named {', '.join(missing)} is connected to {address} (connected: "
                         f"{', '.join(sorted(found)) or 'none'})",
                         f"start `edgezoo agent --address {address} --name {missing[0]}` on it, or pick a connected one")
    scenario, options = scenario or Scenario(), options or {}
    jobs = []
    for art in artifacts:
        rt = runtime or DEFAULT_RUNTIME.get(art.manifest.get("format", ""), "onnxruntime")
        jobs += [_Job(art, found[n], rt, fleet_key(art, rt, threads, scenario, options, found[n])) for n in names]
    return jobs


def run_jobs(jobs: list[_Job], address: str, threads: int = 2, scenario: Scenario | None = None,
             options: dict[str, Any] | None = None, timeout: float = 180.0,
             inputs: list[dict[str, Any]] | None = None,
             on_record: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run the jobs on their devices; every job gives a record (ok, failed, unavailable or interrupted), handed to
    `on_record` as it arrives. Ctrl-C cancels what is left; those jobs' records say 'interrupted'."""
    if not jobs:
        return []
    ray = connect(address)
    scenario, options = scenario or Scenario(), options or {}
    task = ray.remote(_on_device)
    request = {"threads": threads, "scenario": settings(scenario), "options": options, "timeout": timeout,
               "inputs": inputs}
    blobs = {id(job.artifact): None for job in jobs}
    pending: dict[Any, _Job] = {}
    for job in jobs:
        if blobs[id(job.artifact)] is None:
            blobs[id(job.artifact)] = ray.put(pack(job.artifact))  # once per artifact, fetched by each device
        ref = task.options(resources={resource(job.device["name"]): 1.0}, num_cpus=0, max_retries=0,
                           name=f"edgezoo-profile@{job.device['name']}").remote(
            job.device["name"], blobs[id(job.artifact)], job.artifact.manifest, {**request, "runtime": job.runtime})
        pending[ref] = job
    per_device = max(sum(1 for j in jobs if j.device["name"] == n) for n in {j.device["name"] for j in jobs})
    deadline = time.monotonic() + per_device * (timeout + SHIP_SLACK_S)
    records: list[dict[str, Any]] = []

    def done(job: _Job, rec: dict[str, Any]) -> None:
        records.append(rec)
        if on_record is not None:
            on_record(rec)

    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            for ref in ready:
                job = pending.pop(ref)
                done(job, _collect(ray, ref, job, threads, scenario))
            if not ready:
                _check_alive(ray, pending, threads, scenario, done, deadline)
    except KeyboardInterrupt:
        for ref, job in pending.items():
            ray.cancel(ref)
            done(job, _failed(job, threads, scenario, interrupted_result(f"profiling on {job.device['name']}")))
        raise
    return records


def _collect(ray: Any, ref: Any, job: _Job, threads: int, scenario: Scenario) -> dict[str, Any]:
    try:
        return _finish(ray.get(ref), job)
    except ray.exceptions.RayError as e:  # the node, its worker or the task's object went away
        return _failed(job, threads, scenario, _lost(job, e))


def _check_alive(ray: Any, pending: dict[Any, _Job], threads: int, scenario: Scenario,
                 done: Callable[[_Job, dict[str, Any]], None], deadline: float) -> None:
    """Jobs whose device left the cluster (or that ran past the deadline) end as failure records now."""
    alive = {d["node_id"] for d in _devices(ray).values()}
    late = time.monotonic() > deadline
    for ref, job in list(pending.items()):
        if job.device["node_id"] in alive and not late:
            continue
        ray.cancel(ref)  # a late task's child is stopped like on Ctrl-C; a lost node's is gone with it
        pending.pop(ref)
        result = _lost(job, None) if not late else R.failure(
            "failed", "DeviceTimeout", f"device {job.device['name']} did not answer in time; check its agent, or "
                                       "raise --timeout")
        done(job, _failed(job, threads, scenario, result))


def measure_on(artifacts: list[Artifact], names: list[str], address: str, runtime: str | None = None,
               threads: int = 2, scenario: Scenario | None = None, options: dict[str, Any] | None = None,
               timeout: float = 180.0, inputs: list[dict[str, Any]] | None = None,
               on_record: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Profile every artifact on every named device (see the module doc); returns the records as they arrived."""
    jobs = plan(artifacts, names, address, runtime, threads, scenario, options)
    return run_jobs(jobs, address, threads, scenario, options, timeout, inputs, on_record)

