"""`pip install .` (not editable) beside supervisord, then the README's main job from outside the checkout.

A fresh venv borrows the dev venv's third-party packages (supervisord among them) through one .pth line:
a directory added that way has its own .pth files ignored, so the dev venv's editable finder for
nancemakina stays out. Our wheel is built offline from a copy of the checkout in which a user's config,
state and reports sit where they would, and installed non-editable: only the installed files can answer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEV_PURELIB = Path(sysconfig.get_paths()["purelib"])
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "state", "reports"
)
USER_FILES = {
    "config/config.yaml": "api: {binance_api_secret: do-not-ship}\n",
    "state/ledger.sqlite3": "",
    "reports/20250101T000000Z/summary.json": "{}\n",
    "data/notes.txt": "my notes\n",
}
"""What a user's checkout holds beside the code; none of it may be packaged."""
SDIST_METADATA = ("PKG-INFO", "README.md", "pyproject.toml", "setup.cfg", "nancemakina.egg-info/")
TINY_CONFIG = """\
api: {mode: replay}
state_dir: state
pairs:
  BTCUSDT: {indicator_timeframes: ["1m"]}
monitoring: {enabled: false}
replay: {start: "2025-06-24T06:00:00Z"}   # the last 4.5 hours of the bundled data (replay.data's default)
supervisor: {watch_config: false}
"""
PROBE = """\
import importlib.util, json
import supervisor.supervisord
import nancemakina.actors, nancemakina.supervisor
from nancemakina.actors.config import load_config
print(json.dumps({
    "supervisord": supervisor.supervisord.__file__,
    "nancemakina": list(nancemakina.__path__),
    "actors": nancemakina.actors.__file__,
    "root": nancemakina.supervisor.__file__,
    "replay_data": [str(p) for p in load_config("tiny.yaml").replay_data_paths()],
    "checkout_names": [n for n in ("actors", "tests", "bench") if importlib.util.find_spec(n)],
}))
"""


def package_files() -> set[str]:
    """The package's modules and package data, relative to the package root."""
    files = [ROOT / "supervisor.py", *(ROOT / "actors").rglob("*.py"), *(ROOT / "actors").rglob("*.json")]
    files += [*(ROOT / "actors").rglob("*.json.gz")]
    files += [*(ROOT / "data").glob("*.csv"), *(ROOT / "config").glob("*.example")]
    return {f.relative_to(ROOT).as_posix() for f in files if "__pycache__" not in f.parts}


def run(cmd: list[str | Path], *, cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, f"{cmd}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def user_checkout(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCE)
    for name, text in USER_FILES.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    return src


def fresh_venv(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """(python, its site-packages, a clean environment): no pip config, no index, no user site."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        "PYTHONNOUSERSITE": "1",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    where = run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path, env=env
    )
    purelib = Path(where.strip())
    (purelib / "dev-venv.pth").write_text(f"{DEV_PURELIB}\n")
    return python, purelib, env


def assert_wheel_holds_only_the_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = {n.split("/", 1)[1]: zf.read(n).decode() for n in names if ".dist-info/" in n}
    dist_info = wheel.name.split("-py3")[0] + ".dist-info"
    assert {n for n in names if not n.startswith(f"{dist_info}/")} == {
        f"nancemakina/{f}" for f in package_files()
    }
    assert info["top_level.txt"].split() == ["nancemakina"]
    assert "nancemakina = nancemakina.actors.cli.main:main" in info["entry_points.txt"]
    assert "run = nancemakina.supervisor:run" in info["entry_points.txt"]
    requires = [line for line in info["METADATA"].splitlines() if line.startswith("Requires-Dist:")]
    assert [r for r in requires if "matplotlib" in r] == [
        'Requires-Dist: matplotlib<4,>=3.8; extra == "plot"'
    ]


def assert_sdist_holds_only_the_source(sdist: Path) -> None:
    with tarfile.open(sdist) as tf:
        members = {m.name.split("/", 1)[1] for m in tf.getmembers() if m.isfile()}
    assert {m for m in members if not m.startswith(SDIST_METADATA)} == package_files()


def test_wheel_installs_beside_supervisord_and_runs_the_main_job_anywhere(tmp_path: Path) -> None:
    supervisord = DEV_PURELIB / "supervisor" / "supervisord.py"
    assert supervisord.is_file(), "supervisord is missing from the dev venv: pip install -e '.[dev]'"
    src = user_checkout(tmp_path)
    python, purelib, env = fresh_venv(tmp_path)
    pip = [python, "-m", "pip", "--no-input"]

    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", "dist", src], cwd=tmp_path, env=env)
    [wheel] = (tmp_path / "dist").glob("nancemakina-*.whl")
    assert_wheel_holds_only_the_package(wheel)
    run([python, "-c", "from setuptools import build_meta as b; b.build_sdist('../sdist')"], cwd=src, env=env)
    [sdist] = (tmp_path / "sdist").glob("nancemakina-*.tar.gz")
    assert_sdist_holds_only_the_source(sdist)
    run([*pip, "install", "--no-deps", wheel], cwd=tmp_path, env=env)

    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "tiny.yaml").write_text(TINY_CONFIG)
    probe = json.loads(run([python, "-c", PROBE], cwd=work, env=env))
    installed = purelib / "nancemakina"
    assert probe["nancemakina"] == [str(installed)]
    assert Path(probe["actors"]).is_relative_to(installed)
    assert Path(probe["root"]) == installed / "supervisor.py"
    assert Path(probe["supervisord"]) == supervisord
    assert [Path(p).parent for p in probe["replay_data"]] == [installed / "data"] * 2
    assert probe["checkout_names"] == []

    nancemakina = python.with_name("nancemakina")
    run([nancemakina, "run", "--config", "tiny.yaml"], cwd=work, env=env)
    out = run([nancemakina, "report", "--config", "tiny.yaml", "--out", "rep"], cwd=work, env=env)
    assert "crossovers" in out
    assert json.loads((work / "rep" / "summary.json").read_text())["crossovers"] > 0
    assert sorted(p.name for p in (work / "rep").iterdir()) == [
        "decisions.csv",
        "equity.png",
        "summary.json",
        "trades.csv",
    ]
