"""``ControlServer``: the control socket, an authenticated local line-JSON RPC into the daemon for the shell.

The wire format is ``control_protocol``'s, the commands are ``control_commands``'. Only the daemon's own uid
and root (plus ``allowed_uids``) get in, checked with ``SO_PEERCRED``; the socket file is 0600 in a directory
we create 0700. Requests run against a :class:`ControlTarget` whose methods read snapshots, so a busy actor
mailbox never stalls the shell; each call still has a deadline, and a call that misses it closes its
connection so stuck calls stay bounded by ``max_clients``. Every response is encoded by
``control_protocol.encode_response``, which masks secrets before anything leaves the process.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import stat
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Self

from loguru import logger

from .control_commands import ControlError, ControlTarget, dispatch
from .control_protocol import (
    MAX_LINE_BYTES,
    BadRequestError,
    Request,
    encode_plain,
    encode_response,
    error_response,
    hello_response,
    parse_request,
    result_response,
)

SUN_PATH_MAX = 107
"""``sun_path`` is 108 bytes including the terminating NUL."""

_UCRED = struct.Struct("3i")


class ControlSocketInUseError(RuntimeError):
    """Another live process answers on the socket path, or the path is not a socket: refuse to start."""


class PeerCredentials(NamedTuple):
    """``struct ucred`` of the connecting process, from ``SO_PEERCRED``."""

    pid: int
    uid: int
    gid: int


def peer_credentials(conn: socket.socket) -> PeerCredentials | None:
    """The peer's pid/uid/gid; None where the platform has no ``SO_PEERCRED`` (the peer is then refused)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    return PeerCredentials(*_UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, option, _UCRED.size)))


class _Slot:
    """One of ``max_clients``: held by a connection and by each call it started, freed when all let go."""

    def __init__(self, pool: threading.BoundedSemaphore) -> None:
        self._pool = pool
        self._lock = threading.Lock()
        self._holders = 1

    def hold(self) -> None:
        with self._lock:
            self._holders += 1

    def drop(self) -> None:
        with self._lock:
            self._holders -= 1
            last = self._holders == 0
        if last:
            self._pool.release()


def control_socket_taken(path: Path) -> str | None:
    """Why a daemon could not listen on ``path`` (a live process serves it, or it is not a socket), or
    None if it can: absent, or a stale socket a dead process left, which the daemon replaces."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None
    if not stat.S_ISSOCK(mode):
        return f"{path} exists and is not a socket; refusing to replace it"
    if _answers(path):
        return f"another live process serves the control socket {path} (a second daemon?); refusing to start"
    return None


class ControlServer:
    """Serves ``target`` on the Unix socket ``path`` until :meth:`stop`."""

    def __init__(
        self,
        path: Path,
        target: ControlTarget,
        *,
        allowed_uids: frozenset[int] | None = None,
        own_uid: int | None = None,
        allow_root: bool = True,
        redact: Callable[[str], str] | None = None,
        request_timeout_s: float = 15.0,
        idle_timeout_s: float = 900.0,
        max_clients: int = 8,
    ) -> None:
        self.path = Path(path)
        self._target = target
        self._own_uid = os.geteuid() if own_uid is None else own_uid
        self._allow_root = allow_root
        self._allowed = allowed_uids or frozenset()
        self._redact = redact or (lambda text: text)
        self._request_timeout_s = request_timeout_s
        self._idle_timeout_s = idle_timeout_s
        self._slots = threading.BoundedSemaphore(max_clients)
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._accept_thread: threading.Thread | None = None
        self._inode: int | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bind (0600), listen and serve in a daemon thread. Raises :class:`ControlSocketInUseError`."""
        if self._listener is not None:
            raise RuntimeError("a ControlServer starts once; make a new one")
        self._prepare_path()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.path))
            # Nobody can connect before listen(), so tightening the mode here leaves no window.
            self.path.chmod(0o600)
            listener.listen(16)
        except OSError as exc:
            listener.close()
            raise ControlSocketInUseError(f"cannot listen on control socket {self.path}: {exc}") from exc
        self._inode = self.path.stat().st_ino
        self._listener = listener
        self._wake = socket.socketpair()
        self._accept_thread = threading.Thread(target=self._accept_loop, name="control-accept", daemon=True)
        self._accept_thread.start()
        logger.info(f"control socket listening on {self.path}")

    def stop(self) -> None:
        """Stop accepting, drop open connections and remove the socket file (if it is still ours)."""
        if self._stopping.is_set() or self._listener is None or self._wake is None:
            return
        self._stopping.set()
        self._wake[1].send(b"x")
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5.0)
        self._listener.close()
        for end in self._wake:
            end.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        try:
            if self.path.stat().st_ino == self._inode:
                self.path.unlink()
        except FileNotFoundError:
            pass
        logger.info(f"control socket {self.path} closed")

    def _prepare_path(self) -> None:
        size = len(os.fsencode(self.path))
        if size > SUN_PATH_MAX:
            raise ValueError(f"control socket path is {size} bytes, max {SUN_PATH_MAX}: {self.path}")
        parent = self.path.parent
        if not parent.exists():
            parent.mkdir(parents=True, mode=0o700)
            parent.chmod(0o700)
        problem = control_socket_taken(self.path)
        if problem is not None:
            raise ControlSocketInUseError(problem)
        if self.path.is_socket():
            self.path.unlink(missing_ok=True)
            logger.warning(f"removed stale control socket {self.path} left by a dead process")

    def _accept_loop(self) -> None:
        assert self._listener is not None
        assert self._wake is not None
        listener, wake = self._listener, self._wake[0]
        while not self._stopping.is_set():
            try:
                ready, _, _ = select.select([listener, wake], [], [])
                if wake in ready:
                    return
                conn, _ = listener.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            try:
                self._admit(conn)
            except Exception:
                logger.exception("control socket: failed to admit a connection")
                conn.close()

    def _admit(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        creds = peer_credentials(conn)
        refusal = self._refusal(creds)
        if refusal is not None:
            logger.warning(f"control socket: refused {creds}: {refusal}")
            _send_and_close(conn, encode_plain(error_response(None, refusal)))
            return
        if not self._slots.acquire(blocking=False):
            busy = error_response(None, "busy: too many shell connections, try again")
            _send_and_close(conn, encode_plain(busy))
            return
        with self._lock:
            self._conns.add(conn)
        pid = creds.pid if creds else 0
        threading.Thread(
            target=self._serve, args=(conn, _Slot(self._slots)), name=f"control-peer-{pid}", daemon=True
        ).start()

    def _refusal(self, creds: PeerCredentials | None) -> str | None:
        if creds is None:
            return "permission denied: cannot verify the peer's credentials (no SO_PEERCRED here)"
        trusted = {self._own_uid, *self._allowed} | ({0} if self._allow_root else set())
        if creds.uid in trusted:
            return None
        allowed = ", ".join(str(uid) for uid in sorted(trusted))
        return (
            f"permission denied: uid {creds.uid} may not use this control socket "
            f"(allowed uids: {allowed}); run the shell as the daemon's user"
        )

    def _serve(self, conn: socket.socket, slot: _Slot) -> None:
        try:
            conn.settimeout(self._idle_timeout_s)
            conn.sendall(self._encode(hello_response()))
            with conn.makefile("rb") as lines:
                while not self._stopping.is_set():
                    line = lines.readline(MAX_LINE_BYTES + 1)
                    if not line:
                        return
                    if len(line) > MAX_LINE_BYTES:
                        conn.sendall(
                            self._encode(error_response(None, f"request longer than {MAX_LINE_BYTES} bytes"))
                        )
                        return
                    if not line.strip():
                        continue
                    response, keep_open = self._respond(line, slot)
                    conn.sendall(self._encode(response))
                    if not keep_open:
                        return
        except OSError:
            pass  # idle timeout, peer gone, or stop(): nothing to report to anyone
        except Exception:
            logger.exception("control socket: connection handler failed")
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()
            slot.drop()

    def _respond(self, line: bytes, slot: _Slot) -> tuple[dict[str, Any], bool]:
        try:
            request = parse_request(line)
        except BadRequestError as exc:
            return error_response(exc.rid, str(exc)), True
        return self._call(request, slot)

    def _call(self, request: Request, slot: _Slot) -> tuple[dict[str, Any], bool]:
        rid, cmd = request.rid, request.cmd
        done = threading.Event()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["result"] = dispatch(self._target, cmd, list(request.args))
            except ControlError as exc:
                box["error"] = str(exc)
            except Exception as exc:
                logger.exception(f"control command {cmd!r} failed")
                box["error"] = f"internal error in {cmd}: {type(exc).__name__}: {exc}"
            finally:
                done.set()
                slot.drop()

        slot.hold()
        threading.Thread(target=work, name=f"control-call-{cmd[:20]}", daemon=True).start()
        if not done.wait(self._request_timeout_s):
            logger.warning(f"control command {cmd!r} timed out after {self._request_timeout_s:g}s")
            message = (
                f"{cmd}: no answer within {self._request_timeout_s:g}s (daemon busy?); connection closed"
            )
            return error_response(rid, message), False
        if "error" in box:
            return error_response(rid, box["error"]), True
        return result_response(rid, box["result"]), True

    def _encode(self, response: dict[str, Any]) -> bytes:
        return encode_response(response, self._redact)


def _send_and_close(conn: socket.socket, data: bytes) -> None:
    try:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        conn.close()


def _answers(path: Path) -> bool:
    """Does a live process accept connections on ``path``? Unreachable-for-other-reasons counts as live."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:
        return True
    finally:
        probe.close()
    return True
