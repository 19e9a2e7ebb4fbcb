"""Security groups between tasks: every TCP connection one task opens to another, judged by the
planned rules of the groups RunTask gave each task, as a VPC would judge it.

Tasks share this machine's loopback, so nothing drops a connection here: the rehearsal records
them instead (`ConnectionWatch` samples the kernel's TCP table, as root, once a second)
and judges each afterwards (`dropped`). A connection passes when an egress rule of one of the
source's groups and an ingress rule of one of the destination's groups both admit it (protocol,
port, and the other side's group or CIDR): security groups are stateful, so replies need no rule.
The source task is found by the process that opened the connection (its environment names the
task); the destination by the address it was given (127.0.0.N). A CIDR rule admits a task when
it covers the whole VPC (a task's real address is somewhere in its private subnets).

What this cannot see: a connection shorter than the sampling interval (Dask's connections are
pooled and live as long as the cluster); traffic to AWS's endpoints and the Prefect API (they are 127.0.0.1 here,
not tasks).
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

SAMPLE_S = 1.0


@dataclass(frozen=True)
class GroupRule:
    """One planned rule of a security group (``aws:vpc/securityGroup{Ingress,Egress}Rule``)."""

    name: str
    direction: str  # "ingress" or "egress"
    group: str  # the group the rule belongs to
    protocol: str  # "tcp", "udp" or "-1" (all)
    from_port: int
    to_port: int
    peer_group: str = ""  # the other side: a group,
    cidr: str = ""  # a CIDR,
    prefix_list: str = ""  # or a prefix list (AWS's services: never a task)

    def admits(self, peer_groups: Iterable[str], port: int, vpc_cidr: str) -> bool:
        if self.protocol not in ("tcp", "-1"):
            return False
        if self.protocol == "tcp" and not self.from_port <= port <= self.to_port:
            return False
        if self.peer_group:
            return self.peer_group in set(peer_groups)
        if self.cidr and vpc_cidr:
            return ipaddress.ip_network(self.cidr).supernet_of(ipaddress.ip_network(vpc_cidr))  # type: ignore[arg-type]
        return False


@dataclass(frozen=True)
class Connection:
    source: str  # task ID
    destination: str  # task ID
    port: int  # the destination's port


@dataclass(frozen=True)
class Endpoint:
    """What the check needs of a task: its name for the message and its groups."""

    name: str
    groups: tuple[str, ...]


def dropped(
    connections: Iterable[Connection], tasks: Mapping[str, Endpoint], rules: Iterable[GroupRule], vpc_cidr: str
) -> list[str]:
    """One line per connection AWS would drop: source, destination, port, and the missing side."""
    rules = list(rules)
    lines = []
    for connection in sorted(set(connections), key=lambda c: (c.source, c.destination, c.port)):
        source, destination = tasks[connection.source], tasks[connection.destination]
        egress = any(
            r.direction == "egress"
            and r.group in source.groups
            and r.admits(destination.groups, connection.port, vpc_cidr)
            for r in rules
        )
        ingress = any(
            r.direction == "ingress"
            and r.group in destination.groups
            and r.admits(source.groups, connection.port, vpc_cidr)
            for r in rules
        )
        if egress and ingress:
            continue
        missing = " and ".join(
            side
            for side, ok in (
                (f"no egress rule of {', '.join(source.groups) or 'no group'}", egress),
                (f"no ingress rule of {', '.join(destination.groups) or 'no group'}", ingress),
            )
            if not ok
        )
        lines.append(f"{source.name} -> {destination.name} port {connection.port}: {missing} admits it")
    return lines


@dataclass
class ConnectionWatch:
    """Samples the TCP connections between tasks while the rehearsal runs.

    ``addresses`` gives the task ID at each address handed out so far; ``task_of`` the task ID of
    a process (or None for processes outside every task).
    """

    addresses: Callable[[], Mapping[str, str]]
    task_of: Callable[[int], str | None]
    interval: float = SAMPLE_S
    connections: set[Connection] = field(default_factory=set)
    samples: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def recorded(self) -> frozenset[Connection]:
        with self._lock:
            return frozenset(self.connections)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="connection-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sample()  # what is open at the end counts too

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        import psutil

        addresses = self.addresses()
        if not addresses:  # no task running: nothing to read the kernel's table for
            self.samples += 1
            return
        try:
            table = psutil.net_connections(kind="tcp")
        except (psutil.Error, OSError):
            return
        listening = {(c.laddr.ip, c.laddr.port) for c in table if c.status == psutil.CONN_LISTEN and c.laddr}
        for entry in table:
            if not entry.raddr or entry.pid is None or entry.raddr.ip not in addresses:
                continue
            if entry.laddr and (
                {(entry.laddr.ip, entry.laddr.port), ("0.0.0.0", entry.laddr.port), ("::", entry.laddr.port)}
                & listening
            ):
                continue  # the accepting side of a connection: its peer opened it
            with contextlib.suppress(psutil.Error):
                source = self.task_of(entry.pid)
                destination = addresses[entry.raddr.ip]
                if source is not None and source != destination:
                    with self._lock:
                        self.connections.add(Connection(source, destination, entry.raddr.port))
        self.samples += 1
