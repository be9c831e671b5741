"""A local multi-node Ray cluster for the fleet tests and benchmark: loopback only, one CPU and 80 MB of object
store per node, no dashboard; each device node advertises what `edgezoo agent` would (profiles.fleet.node_options).
Also: which processes descend from a node, and which addresses the cluster's processes listen on (Linux /proc)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import pytest

NODE = {"num_cpus": 1, "object_store_memory": 80 * 2**20, "node_ip_address": "127.0.0.1"}
# a lost node is noticed within a few seconds rather than the default half minute
FAST_HEALTH = {"health_check_period_ms": 500, "health_check_failure_threshold": 4, "health_check_timeout_ms": 1000}


def start_cluster(mp: pytest.MonkeyPatch, head_device: str) -> Any:
    """A Cluster whose head is the device `head_device`; this process is connected to it (loopback mode)."""
    import ray
    from ray.cluster_utils import Cluster

    from profiles import fleet

    mp.setenv(fleet.LOOPBACK_ENV, "0")
    mp.setattr(ray._private.ray_constants, "ENABLE_RAY_CLUSTER", False)
    head = {**NODE, "include_dashboard": False, "_system_config": FAST_HEALTH, **fleet.node_options(head_device)}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    fleet.connect(cluster.address)
    return cluster


def add_device(cluster: Any, name: str) -> Any:
    from profiles import fleet

    node = cluster.add_node(**NODE, **fleet.node_options(name))
    cluster.wait_for_nodes()
    return node


def _parents() -> dict[int, int]:
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            out[int(stat.parent.name)] = int(text.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return out


def descendants(roots: set[int]) -> set[int]:
    parents, found = _parents(), set(roots)
    grew = True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return found


def child_of(root: int, needle: str) -> list[int]:
    """Processes under `root` whose command line contains `needle`."""
    hits = []
    for pid in descendants({root}) - {root}:
        try:
            if needle in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                hits.append(pid)
        except OSError:
            continue
    return hits


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    v6 = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return str(v6.ipv4_mapped or v6)  # ::ffff:127.0.0.1 is 127.0.0.1


def listening_addresses(cluster: Any) -> set[str]:
    """Local addresses of the TCP sockets listening in the cluster's processes (and this driver)."""
    roots = {p.process.pid for node in [cluster.head_node, *cluster.worker_nodes]
             for procs in node.all_processes.values() for p in procs}
    pids = descendants(roots) | {os.getpid()}
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                found.add(_address(cols[1].split(":")[0]))
    return found
