"""HTTP/1.1 spoken by hand over a socket, so that a test decides how the bytes travel: in
pieces, with pauses, chunked, pipelined, or never finished."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any

HEAD_END = b"\r\n\r\n"


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request_head(
    method: str, path: str, headers: dict[str, str], content_length: int | None
) -> bytes:
    """The request line and headers; `Content-Length` when given, else chunked if a body follows."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def post(path: str, body: bytes, token: str, **headers: str) -> bytes:
    """A whole POST of a JSON body with Content-Length."""
    fields = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers}
    return request_head("POST", path, fields, len(body)) + body


def get(path: str, token: str, **headers: str) -> bytes:
    return request_head("GET", path, {"Authorization": f"Bearer {token}", **headers}, None)


def chunked_post_head(path: str, token: str, **headers: str) -> bytes:
    fields = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
        **headers,
    }
    return request_head("POST", path, fields, None)


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


LAST_CHUNK = b"0\r\n\r\n"


def pieces(data: bytes, count: int) -> list[bytes]:
    """`data` cut into `count` pieces of nearly equal size."""
    size = -(-len(data) // count)
    return [data[i : i + size] for i in range(0, len(data), size)]


class Connection:
    """One client connection to a loopback port."""

    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, *parts: bytes, pause_s: float = 0.0) -> None:
        """Write each part with its own write, pausing between them."""
        for index, part in enumerate(parts):
            if index and pause_s:
                time.sleep(pause_s)
            self.sock.sendall(part)

    def response(self) -> Response:
        """Read one whole response (Content-Length or chunked) off the connection."""
        head = self._until(HEAD_END)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._chunked_body()
        else:
            body = self._exactly(int(headers.get("content-length", "0")))
        return Response(int(status_line.split()[1]), headers, body)

    def response_status(self) -> int:
        """The status of a response whose body is left unread (an event stream's)."""
        return int(self._until(HEAD_END).split(b" ", 2)[1])

    def closed_by_server(self, within_s: float) -> bool:
        """Whether the server closes the connection within `within_s` (data before that is
        discarded)."""
        deadline = time.monotonic() + within_s
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                if not self.sock.recv(65536):
                    return True
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True
        return False

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self.buffer += data

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self._fill()
        found, _, self.buffer = self.buffer.partition(marker)
        return found

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        found, self.buffer = self.buffer[:size], self.buffer[size:]
        return found

    def _chunked_body(self) -> bytes:
        body = b""
        while size := int(self._until(b"\r\n").split(b";")[0], 16):
            body += self._exactly(size)
            self._exactly(2)
        self._until(b"\r\n")  # no trailers are sent to us
        return body
