"""The control socket: an authenticated local line-JSON RPC into the running daemon for ``nancemakina shell``.

Wire protocol (UTF-8, one JSON object per ``\\n``-terminated line, at most 64 KiB)::

    on accept, server → client   {"id": null, "ok": true, "result": {"server": "nancemakina", "protocol": 1,
                                  "pid": 1234}}
                             or  {"id": null, "ok": false, "error": "..."}   (refused or busy), then close
    client → server              {"id": 1, "cmd": "inspect", "args": ["BTC_USDT", "1m"]}
    server → client              {"id": 1, "ok": true, "result": ...}
                             or  {"id": 1, "ok": false, "error": "..."}

Only the daemon's own uid and root (plus ``allowed_uids``) get in, checked with ``SO_PEERCRED``; the socket
file is 0600 in a directory we create 0700. Requests run against a :class:`ControlTarget` whose methods read
snapshots, so a busy actor mailbox never stalls the shell; each call still has a deadline, and a call that
misses it closes its connection so stuck calls stay bounded by ``max_clients``. Every response passes a
redaction step after serialisation: secrets must not leave the process even if a target leaks one.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import math
import os
import re
import select
import socket
import stat
import struct
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Self

from loguru import logger

from ..config import api_symbol_for_key
from ..domain.model import TIMEFRAME_MS

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 64 * 1024
SUN_PATH_MAX = 107
"""``sun_path`` is 108 bytes including the terminating NUL."""

_UCRED = struct.Struct("3i")
_SECRET_FIELD = re.compile(
    r'("[^"\\]*(?:secret|api_?key|password|passphrase|token|signature|listen_?key|private_?key)[^"\\]*"\s*:\s*)'
    r'"(?:[^"\\]|\\.)*"',
    re.IGNORECASE,
)


class ControlTarget(Protocol):
    """What the control server asks of the daemon. Called from handler threads, concurrently: every method
    must be a thread-safe snapshot read (or a ``tell``/bounded ``ask`` for the commands that act), return
    JSON-able data, never secrets, and raise :class:`ControlError` for a request it refuses."""

    def actor_tree(self) -> list[dict[str, Any]]:
        """Rows ``{"name", "kind", "parent", "state", "mailbox", "msgs_per_s", "messages", "restarts",
        "uptime_s", "last_message_age_s"}`` (+ optional ``"symbol"``); ``parent`` is another row's name or
        None."""
        ...

    def inspect(self, symbol: str, timeframe: str | None) -> dict[str, Any]:
        """``{"symbol", "timeframes": [{"timeframe", "sma_short", "sma_long", "side", "last_klines",
        "pending", "last_decision", "warm", "unrepaired_gap"}], "paused", "parked", "position"}``."""
        ...

    def positions(self) -> list[dict[str, Any]]: ...

    def orders(self) -> list[dict[str, Any]]: ...

    def decisions(self, symbol: str | None, limit: int) -> list[dict[str, Any]]:
        """Newest last, at most ``limit`` rows."""
        ...

    def restart_pair(self, symbol: str) -> dict[str, Any]: ...

    def pause_pair(self, symbol: str) -> dict[str, Any]: ...

    def resume_pair(self, symbol: str) -> dict[str, Any]: ...

    def reload(self) -> dict[str, Any]: ...

    def health(self) -> dict[str, Any]:
        """``{"status": "ok" | "degraded" | "failing", "checks": {...}}``."""
        ...

    def threads(self) -> dict[str, Any]:
        """Where the process's CPU time went, per kind of thread: ``{"cpu_affinity", "gil_switch_interval_ms",
        "kinds": [{"kind", "threads", "cpu_s", "wait_s", "wakeups", "wait_per_wakeup_us", "cpus"}]}``."""
        ...


class ControlError(Exception):
    """A request refused for a reason the operator can fix (unknown pair, bad argument); sent as its text."""


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


def mask_secret_fields(text: str) -> str:
    """Blank the string value of any JSON field whose name looks like a credential."""
    return _SECRET_FIELD.sub(r'\1"***"', text)


def secret_redactor(secrets: Iterable[str | None]) -> Callable[[str], str]:
    """A ``redact`` hook replacing each known secret value (raw and JSON-escaped) with ``***``."""
    values = {s for s in secrets if s and len(s) >= 4}
    forms = sorted(values | {json.dumps(s, ensure_ascii=False)[1:-1] for s in values}, key=len, reverse=True)

    def redact(text: str) -> str:
        for form in forms:
            text = text.replace(form, "***")
        return text

    return redact


@dataclass(frozen=True, slots=True)
class CommandInfo:
    name: str
    usage: str
    summary: str
    arity: tuple[int, int] = (0, 0)
    """Fewest and most arguments."""


COMMANDS: tuple[CommandInfo, ...] = (
    CommandInfo("ls", "ls", "every actor: state, mailbox depth, msgs/s, restarts, uptime"),
    CommandInfo("top", "top [--once] [-n N] [--interval S]", "ls every second, busiest first (q quits)"),
    CommandInfo(
        "inspect", "inspect PAIR [TF]", "SMAs, side, klines, pending signal, decision, position", (1, 2)
    ),
    CommandInfo("positions", "positions", "open positions from the ledger"),
    CommandInfo("orders", "orders", "open orders from the ledger"),
    CommandInfo(
        "decisions", "decisions [PAIR] [--limit N]", "latest strategy decisions, newest last", (0, 3)
    ),
    CommandInfo("restart", "restart PAIR", "restart one pair's actors (fresh state, budget reset)", (1, 1)),
    CommandInfo("pause", "pause PAIR", "stop opening trades on a pair (positions stay protected)", (1, 1)),
    CommandInfo("resume", "resume PAIR", "undo pause", (1, 1)),
    CommandInfo("reload", "reload", "re-read the config file and apply what changed"),
    CommandInfo("health", "health", "overall status and each check"),
    CommandInfo("threads", "threads", "CPU and time waiting for a CPU per kind of thread, and their CPUs"),
    CommandInfo("help", "help", "this list"),
)
SHELL_ONLY = frozenset({"top"})
"""Commands the shell runs itself (``top`` polls ``ls``); the server answers them with a pointer."""
DEFAULT_DECISIONS = 20
MAX_DECISIONS = 1000
_BY_NAME = {c.name: c for c in COMMANDS}
_PAIR_TEXT = re.compile(r"[A-Z0-9]+(?:_[A-Z0-9]+)?")


def normalize_pair(text: str) -> str:
    """``BTCUSDT``, ``btcusdt`` and the key ``BTC_USDT`` all mean ``BTCUSDT``; ``BTCUSD_PERP`` stays."""
    key = text.strip().upper()
    if not _PAIR_TEXT.fullmatch(key):
        raise ControlError(f"invalid pair {text!r}: use BTCUSDT, btcusdt, BTC_USDT or BTCUSD_PERP")
    return api_symbol_for_key(key)


def unknown_command(word: str) -> str:
    names = sorted(_BY_NAME)
    close = difflib.get_close_matches(word.lower(), names, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown command {word!r}{hint} (commands: {', '.join(names)})"


def dispatch(target: ControlTarget, cmd: str, args: list[str]) -> Any:
    """Run one request against ``target``; argument problems raise :class:`ControlError`."""
    info = _BY_NAME.get(cmd)
    if info is None:
        raise ControlError(unknown_command(cmd))
    if cmd in SHELL_ONLY:
        raise ControlError(f"{cmd!r} runs in `nancemakina shell` (it polls 'ls')")
    low, high = info.arity
    if not low <= len(args) <= high:
        raise ControlError(f"usage: {info.usage}")
    match cmd:
        case "ls":
            return target.actor_tree()
        case "inspect":
            return target.inspect(normalize_pair(args[0]), _timeframe(args[1]) if len(args) == 2 else None)
        case "positions":
            return target.positions()
        case "orders":
            return target.orders()
        case "decisions":
            return target.decisions(*_decisions_args(args))
        case "restart":
            return target.restart_pair(normalize_pair(args[0]))
        case "pause":
            return target.pause_pair(normalize_pair(args[0]))
        case "resume":
            return target.resume_pair(normalize_pair(args[0]))
        case "reload":
            return target.reload()
        case "health":
            return target.health()
        case "threads":
            return target.threads()
        case _:  # help: answered here so it always matches the table above
            return [{"command": c.name, "usage": c.usage, "summary": c.summary} for c in COMMANDS]


def _timeframe(text: str) -> str:
    if text not in TIMEFRAME_MS:
        raise ControlError(f"unknown timeframe {text!r} (valid: {', '.join(TIMEFRAME_MS)})")
    return text


def _decisions_args(args: list[str]) -> tuple[str | None, int]:
    symbol: str | None = None
    limit = DEFAULT_DECISIONS
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if word in {"--limit", "-n"} and rest:
            value = rest.pop(0)
        elif word.startswith("--limit="):
            value = word.partition("=")[2]
        elif symbol is None and not word.startswith("-"):
            symbol = normalize_pair(word)
            continue
        else:
            raise ControlError(f"usage: {_BY_NAME['decisions'].usage}")
        if not value.isdigit() or not 1 <= int(value) <= MAX_DECISIONS:
            raise ControlError(f"--limit must be a whole number from 1 to {MAX_DECISIONS}, got {value!r}")
        limit = int(value)
    return symbol, limit


def jsonable(value: Any) -> Any:
    """Strict-JSON data: NaN/inf become null, Decimal text, enums their value, dataclasses dicts."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    return str(value)  # Decimal keeps its digits as text; anything else shows as its str()


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
        try:
            mode = self.path.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise ControlSocketInUseError(f"{self.path} exists and is not a socket; refusing to replace it")
        if _answers(self.path):
            raise ControlSocketInUseError(
                f"another live process serves the control socket {self.path} (a second daemon?); refusing "
                "to start"
            )
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
            _send_and_close(conn, _encode_plain(_error(None, refusal)))
            return
        if not self._slots.acquire(blocking=False):
            _send_and_close(conn, _encode_plain(_error(None, "busy: too many shell connections, try again")))
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
            hello = {"server": "nancemakina", "protocol": PROTOCOL_VERSION, "pid": os.getpid()}
            conn.sendall(self._encode({"id": None, "ok": True, "result": hello}))
            with conn.makefile("rb") as lines:
                while not self._stopping.is_set():
                    line = lines.readline(MAX_LINE_BYTES + 1)
                    if not line:
                        return
                    if len(line) > MAX_LINE_BYTES:
                        conn.sendall(
                            self._encode(_error(None, f"request longer than {MAX_LINE_BYTES} bytes"))
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
            request = json.loads(line)
        except ValueError:
            return _error(None, "bad request: not a JSON object line"), True
        if not isinstance(request, dict):
            return _error(None, "bad request: not a JSON object line"), True
        rid = request.get("id")
        if isinstance(rid, bool) or not isinstance(rid, int | str | None):
            rid = None
        cmd, args = request.get("cmd"), request.get("args", [])
        if (
            not isinstance(cmd, str)
            or not isinstance(args, list)
            or not all(isinstance(a, str) for a in args)
        ):
            return _error(rid, 'bad request: need {"cmd": str, "args": [str, ...]}'), True
        return self._call(rid, cmd, args, slot)

    def _call(self, rid: object, cmd: str, args: list[str], slot: _Slot) -> tuple[dict[str, Any], bool]:
        done = threading.Event()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["result"] = dispatch(self._target, cmd, args)
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
            return _error(rid, message), False
        if "error" in box:
            return _error(rid, box["error"]), True
        return {"id": rid, "ok": True, "result": jsonable(box["result"])}, True

    def _encode(self, response: dict[str, Any]) -> bytes:
        rid = response.get("id")
        try:
            text = self._redact(mask_secret_fields(json.dumps(response, ensure_ascii=False, allow_nan=False)))
            json.loads(text)
        except (TypeError, ValueError) as exc:
            logger.error(f"control socket: response withheld: {type(exc).__name__}")
            text = json.dumps(
                _error(rid, "response withheld: it did not survive JSON encoding and redaction")
            )
        return text.encode() + b"\n"


def _error(rid: object, message: str) -> dict[str, Any]:
    return {"id": rid, "ok": False, "error": message}


def _encode_plain(response: dict[str, Any]) -> bytes:
    return json.dumps(response).encode() + b"\n"


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
