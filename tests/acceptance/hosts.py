"""Network hosts on one machine, for a test: each host is a Linux network namespace of its own,
linked by a veth pair to a bridge that lives in a namespace of its own too, so that nothing is
added to the machine's own network. The hosts reach each other only over those links.

A thread enters a host with setns(2), which moves that thread alone; a socket it opens and a
process it starts stay in the host. Needs root and iproute2's `ip`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000  # from <sched.h>
NETNS_DIR = Path("/run/netns")  # where `ip netns add` names its namespaces
# Every namespace of a test run is named `hrtest-<pid>-<n>-<role>`: unique to the run, and a
# crashed run's leftovers are known by their pid, which no longer runs.
NAME_PREFIX = "hrtest"
LEFTOVER = re.compile(rf"^{NAME_PREFIX}-(\d+)-")
COMMAND_TIMEOUT_S = 10.0


def unavailable() -> str | None:
    """Why this machine cannot make the hosts (a reason to skip), or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip` to create network namespaces"
    probe = f"{NAME_PREFIX}-{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True, check=False)
    return None


def ip(*args: str) -> None:
    """Run `ip args`; raise with its error output if it fails."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def enter(namespace: str) -> None:
    """Move the calling thread (only it) into the network namespace `namespace`."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / namespace, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({namespace}): {os.strerror(errno)}")
    finally:
        os.close(fd)


def remove_leftovers() -> list[str]:
    """Delete the namespaces of earlier runs that died before cleaning up, and end the
    processes those runs left in them; return the namespaces' names."""
    removed = []
    for path in NETNS_DIR.glob(f"{NAME_PREFIX}-*") if NETNS_DIR.is_dir() else []:
        found = LEFTOVER.match(path.name)
        if found is None or _runs(int(found[1])):
            continue
        listed = subprocess.run(["ip", "netns", "pids", path.name], capture_output=True, text=True)
        for pid in map(int, listed.stdout.split()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(RuntimeError):
            ip("netns", "delete", path.name)
            removed.append(path.name)
    return removed


def _runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Host:
    """One network host: a namespace with loopback and one interface, `eth0`, at `address`."""

    role: str
    namespace: str
    address: str

    def run(self, call: Callable[..., T], *args: Any) -> T:
        """Run `call(*args)` on a thread inside this host; return what it returns."""
        result: list[T] = []
        error: list[BaseException] = []

        def inside() -> None:
            try:
                enter(self.namespace)
                result.append(call(*args))
            except BaseException as exc:
                error.append(exc)

        # A daemon: a test that times out while it runs can still end its session.
        thread = threading.Thread(target=inside, name=f"host-{self.role}", daemon=True)
        thread.start()
        thread.join()
        if error:
            raise error[0]
        return result[0]

    def popen(
        self, argv: list[str], log_path: Path, env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        """Start `argv` on this host (`ip netns exec` execs it: the pid is the command's own),
        its output appended to `log_path`."""
        with log_path.open("ab") as log:
            return subprocess.Popen(
                ["ip", "netns", "exec", self.namespace, *argv],
                env=env,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )


class Network:
    """Hosts on one bridge, in one subnet; `close()` deletes every namespace it made.

    A process still running in a host keeps its namespace alive after the delete: stop the
    processes first.
    """

    def __init__(self, subnet: str = "10.77.0.0/24") -> None:
        self.subnet = ipaddress.ip_network(subnet)
        self._addresses = self.subnet.hosts()
        self._stem = f"{NAME_PREFIX}-{os.getpid()}-{secrets.token_hex(2)}"
        self._namespaces: list[str] = []
        self.hosts: dict[str, Host] = {}
        try:
            self.bridge = self._namespace("bridge")
            ip("-n", self.bridge, "link", "add", "br0", "type", "bridge")
            ip("-n", self.bridge, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def _namespace(self, role: str) -> str:
        name = f"{self._stem}-{role}"
        ip("netns", "add", name)
        self._namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def add_host(self, role: str) -> Host:
        """A new host named `role`, linked to the bridge, with the subnet's next address (the
        namespace is deleted by `close()` even if this fails half way)."""
        namespace = self._namespace(role)
        address = str(next(self._addresses))
        port = f"p{len(self.hosts)}"  # the bridge's end of the link (names are short: 15 bytes)
        ip(
            "-n",
            self.bridge,
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            namespace,
        )
        ip("-n", self.bridge, "link", "set", port, "master", "br0", "up")
        ip("-n", namespace, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        ip("-n", namespace, "link", "set", "eth0", "up")
        host = self.hosts[role] = Host(role, namespace, address)
        return host

    def close(self) -> None:
        """Delete the namespaces (their links go with them). Idempotent."""
        while self._namespaces:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                ip("netns", "delete", self._namespaces.pop())
