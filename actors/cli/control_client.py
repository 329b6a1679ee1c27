"""``ControlClient``: the shell's connection to the daemon's control socket (``ops.control_protocol``).

It reads the server's greeting, sends one request line per command and checks that each answer is the
one asked for. A connection the daemon dropped while idle is reopened before the next command. What went
wrong says what the shell does next: ``ShellConnectionError`` (no usable connection, exit code 2) or
``CommandFailedError`` (the daemon refused the command, exit code 1).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from ..ops.control_protocol import MAX_LINE_BYTES


class ShellConnectionError(Exception):
    """Nothing usable answers on the socket (exit code 2)."""


class CommandFailedError(Exception):
    """The daemon answered the command with an error (exit code 1)."""


class ControlClient:
    """One connection to the control socket, reopened lazily when the daemon dropped it while idle."""

    def __init__(self, path: Path, *, origin: str, timeout_s: float = 60.0) -> None:
        self.path = path
        self.origin = origin
        self._timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._lines: Any = None
        self._next_id = 0

    def connect(self) -> dict[str, Any]:
        """Open the socket and read the server's greeting (or its refusal)."""
        self.close()
        where = f"looked at {self.path} ({self.origin})"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self._timeout_s)
        try:
            sock.connect(str(self.path))
        except PermissionError:
            sock.close()
            message = f"permission denied: run the shell as the daemon's user or root; {where}"
            raise ShellConnectionError(message) from None
        except OSError as exc:
            sock.close()
            reason = exc.strerror or type(exc).__name__
            raise ShellConnectionError(f"cannot connect ({reason}): is the daemon running? {where}") from None
        self._sock, self._lines = sock, sock.makefile("rb")
        hello = self._read()
        if not hello.get("ok"):
            self.close()
            raise ShellConnectionError(f"the daemon refused the connection: {hello.get('error')}")
        result: dict[str, Any] = hello.get("result") or {}
        return result

    def call(self, cmd: str, args: list[str]) -> Any:
        """Send one command; its result, or :class:`CommandFailedError` with the daemon's message."""
        if self._sock is None or self._dropped():
            self.connect()
        assert self._sock is not None
        self._next_id += 1
        request = json.dumps({"id": self._next_id, "cmd": cmd, "args": args}).encode() + b"\n"
        try:
            self._sock.sendall(request)
        except OSError as exc:
            self.close()
            raise ShellConnectionError(f"lost the connection to the daemon: {exc}") from None
        response = self._read()
        in_step = response.get("id") == self._next_id
        if not response.get("ok"):
            if not in_step:
                self.close()
            raise CommandFailedError(str(response.get("error")))
        if not in_step:
            self.close()
            raise ShellConnectionError(f"out-of-step answer from {self.path}")
        return response.get("result")

    def close(self) -> None:
        if self._lines is not None:
            self._lines.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._lines = None

    def _read(self) -> dict[str, Any]:
        try:
            line = self._lines.readline(MAX_LINE_BYTES * 64)
        except OSError as exc:
            self.close()
            raise ShellConnectionError(f"no answer from the daemon: {exc}") from None
        if not line:
            self.close()
            raise ShellConnectionError("the daemon closed the connection")
        try:
            message = json.loads(line)
        except ValueError:
            self.close()
            raise ShellConnectionError(f"not a nancemakina control socket: {self.path}") from None
        if not isinstance(message, dict):
            raise ShellConnectionError(f"not a nancemakina control socket: {self.path}")
        return message

    def _dropped(self) -> bool:
        """The server closed an idle connection (or said something unasked): reconnect before sending."""
        assert self._sock is not None
        self._sock.setblocking(False)  # noqa: FBT003 - socket's own API; a timeout socket would wait first
        try:
            self._sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            self._sock.settimeout(self._timeout_s)
        return True  # end of stream, or bytes nobody asked for
