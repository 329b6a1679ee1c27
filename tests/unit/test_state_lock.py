"""One bot per state directory: the lock a second process cannot take, and that dies with its holder."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from nancemakina.actors.ops.state_lock import StateDirInUseError, StateLock

HOLD = (
    "import sys; from pathlib import Path; from nancemakina.actors.ops.state_lock import StateLock; "
    "StateLock.acquire(Path(sys.argv[1])); print('held', flush=True); sys.stdin.read()"
)


def test_a_second_process_is_refused_naming_the_holder_until_it_dies(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(
            StateDirInUseError, match=rf"in use by nancemakina pid {holder.pid}: stop that bot"
        ):
            StateLock.acquire(tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)  # kill -9 leaves no stale lock behind
        holder.wait(10)
    StateLock.acquire(tmp_path).release()


def test_within_one_process_the_lock_is_shared_and_freed_by_its_last_holder(tmp_path):
    first = StateLock.acquire(tmp_path)
    second = StateLock.acquire(tmp_path)
    first.release()
    first.release()  # idempotent
    assert first.path in StateLock._held
    second.release()
    assert first.path not in StateLock._held
