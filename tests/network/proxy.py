"""nginx as its own process, in front of test API processes, with the shipped config
(deploy/nginx/hookrelay.conf) rendered for loopback test ports."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import REPO_ROOT

SHIPPED_CONFIG = REPO_ROOT / "deploy" / "nginx" / "hookrelay.conf"
START_TIMEOUT_S = 10.0
UPSTREAM_SERVER = re.compile(r"^(\s*)server \d+\.\d+\.\d+\.\d+:\d+;\n", re.MULTILINE)
LISTEN = re.compile(r"^(\s*)listen 80;$", re.MULTILINE)
SHIPPED_ACCESS_LOG = "/var/log/nginx/hookrelay.access.log"

# Everything outside the shipped file: a main config whose files all live in the test's folder.
MAIN_CONFIG = """\
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    include {root}/hookrelay.conf;
}}
"""


def nginx_binary() -> str | None:
    """Debian installs nginx in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def render(config: str, port: int, upstream_ports: list[int], host: str = "127.0.0.1") -> str:
    """The shipped config listening on `port` of `host`, proxying to `upstream_ports` there."""
    servers = UPSTREAM_SERVER.findall(config)
    assert servers, "the shipped config lists no upstream server"
    indent = servers[0]
    lines = "".join(f"{indent}server {host}:{p};\n" for p in upstream_ports)
    config = UPSTREAM_SERVER.sub("", config, count=len(servers) - 1)
    config = UPSTREAM_SERVER.sub(lines, config, count=1)
    config, listens = LISTEN.subn(rf"\g<1>listen {host}:{port};", config)
    assert listens == 1, "the shipped config should listen on port 80 exactly once"
    return config


class Nginx:
    """An nginx master process (not the system's service) on a free loopback port."""

    def __init__(self, binary: str, root: Path, port: int, upstream_ports: list[int]) -> None:
        self.root = root
        self.port = port
        root.chmod(0o755)  # nginx's workers drop root: they must reach their temp folders
        config = render(SHIPPED_CONFIG.read_text(), port, upstream_ports)
        assert SHIPPED_ACCESS_LOG in config, "the shipped config should name its access log"
        self.access_log = root / "hookrelay.access.log"
        (root / "hookrelay.conf").write_text(
            config.replace(SHIPPED_ACCESS_LOG, str(self.access_log))
        )
        (root / "nginx.conf").write_text(MAIN_CONFIG.format(root=root))
        command = [binary, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", "stderr"]
        with (root / "stderr.log").open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"nginx exited: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nginx did not start: {self.log()}")

    def log(self) -> str:
        texts = (p.read_text(errors="replace") for p in self.root.glob("*.log"))
        return "\n".join(text[-3000:] for text in texts)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
