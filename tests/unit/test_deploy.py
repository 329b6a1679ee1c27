"""deploy/: the systemd unit verifies and hardens, Prometheus/Grafana files parse and name real metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from nancemakina.actors.ops.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / "nancemakina.service"
METRIC_NAME = re.compile(r"\b(?:nancemakina|process)_[a-z0-9_]+\b")


def unit_directives() -> dict[str, list[str]]:
    """``Key`` → values in file order (systemd keys repeat, so configparser proper does not fit)."""
    out: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, val = line.partition("=")
        out.setdefault(key.strip(), []).append(val.strip())
    return out


def exposed_names() -> set[str]:
    """Every series name a query can select from a fresh ``Metrics()``: a counter only as ``<family>_total``,
    a histogram only as ``_bucket``/``_sum``/``_count``, anything else by its family name."""
    names = set()
    for family in text_string_to_metric_families(Metrics().exposition().decode()):
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
        else:
            names.add(family.name)
    return names


# -- systemd ---------------------------------------------------------------------------------------------------
def test_unit_has_the_required_directives():
    d = unit_directives()

    def one(key: str) -> str:
        assert key in d, f"missing {key}="
        return d[key][-1]

    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert int(one("WatchdogSec")) > 0
    assert one("Restart") == "on-failure"
    assert one("ExecStart").startswith(
        "/opt/nancemakina/.venv/bin/nancemakina run --config /etc/nancemakina/"
    )
    assert "-HUP" in one("ExecReload")
    assert "$MAINPID" in one("ExecReload")
    assert int(one("TasksMax")) >= 8192
    assert int(one("LimitNOFILE")) >= 4096
    creds = dict(v.split(":", 1) for v in d["LoadCredential"])
    assert set(creds) == {"nancemakina_api_key", "nancemakina_api_secret"}
    assert all(path.startswith("/etc/nancemakina/credentials/") for path in creds.values())
    assert one("User") == one("Group") == "nancemakina"
    assert one("NoNewPrivileges") == "yes"
    assert one("ProtectSystem") == "strict"
    assert one("ProtectHome") == "yes"
    assert one("PrivateTmp") == "yes"
    assert one("ReadWritePaths") == "/var/lib/nancemakina"
    assert one("StateDirectory") == "nancemakina"
    assert one("RestrictAddressFamilies").split() == ["AF_UNIX", "AF_INET", "AF_INET6"]
    assert one("UMask") == "0077"
    assert one("EnvironmentFile").startswith("-")


def test_unit_lets_the_bot_pin_its_threads_and_nothing_else_of_resources():
    """systemd's SystemCallFilter: the first line sets the mode (an allow list here), later lines add (or,
    with ``~``, remove) calls in order. ``supervisor.cpu_affinity`` (default auto) needs sched_setaffinity,
    which ``@resources`` holds; the rest of ``@resources`` stays forbidden."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")

    def group(name: str) -> set[str]:
        listed = subprocess.run([analyze, "syscall-filter", name], capture_output=True, text=True, check=True)
        calls: set[str] = set()
        for line in listed.stdout.splitlines()[1:]:
            item = line.strip()
            if item.startswith("@"):
                calls |= group(item)
            elif item and not item.startswith("#"):
                calls.add(item)
        return calls

    allowed: set[str] = set()
    for entry in unit_directives()["SystemCallFilter"]:
        deny = entry.startswith("~")
        names = set().union(*(group(n) if n.startswith("@") else {n} for n in entry.lstrip("~").split()))
        allowed = allowed - names if deny else allowed | names
    assert "sched_setaffinity" in allowed
    assert "sched_getaffinity" in allowed
    assert not (group("@resources") - {"sched_setaffinity"}) & allowed
    assert not group("@privileged") & allowed


def test_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    # verify insists that ExecStart exists and is executable; the real one lives on the target host only.
    fake = tmp_path / "nancemakina"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    unit = tmp_path / "nancemakina.service"
    unit.write_text(UNIT.read_text().replace("/opt/nancemakina/.venv/bin/nancemakina", str(fake)))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False, timeout=60
    )
    output = result.stdout + result.stderr
    # verify exits 0 on parse warnings ("Unknown key", "Failed to parse ..., ignoring"): treat any line
    # about our unit as a failure. Lines about other units (absent targets in a container) are not ours.
    ours = [line for line in output.splitlines() if "nancemakina" in line]
    assert result.returncode == 0, output
    assert ours == [], output


def test_verify_catches_a_broken_unit(tmp_path):
    """The check above is not vacuous: a typo'd value is reported."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    unit = tmp_path / "broken.service"
    unit.write_text("[Service]\nType=notifyy\nExecStart=/bin/true\n")
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False, timeout=60
    )
    assert "broken.service" in result.stdout + result.stderr


# -- Docker ----------------------------------------------------------------------------------------------------
def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """(INSTRUCTION, arguments) per build stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), args))
    return stages


def test_image_installs_the_package_without_plotting_and_runs_it_unprivileged():
    build, runtime = dockerfile_stages()
    runs = " ".join(args for keyword, args in build if keyword == "RUN")
    assert "pip install --no-deps ." in runs
    assert "plot" not in runs
    assert "matplotlib" not in runs
    assert [args for keyword, args in runtime if keyword == "COPY"] == [
        "--from=build /opt/nancemakina/.venv /opt/nancemakina/.venv",
        "deploy/docker-config.yaml ./config/config.yaml",
    ], "the runtime stage holds the installed package only, no source to import by mistake"
    [user] = [args for keyword, args in runtime if keyword == "USER"]
    assert user.split(":")[0] not in {"root", "0"}
    assert any(keyword == "HEALTHCHECK" and "/healthz" in args for keyword, args in runtime)
    ignored = set((DEPLOY / "Dockerfile.dockerignore").read_text().split())
    assert {".venv", "build", "tests", "bench", "state", "config/config.yaml"} <= ignored


# -- Prometheus ------------------------------------------------------------------------------------------------
def test_prometheus_config_scrapes_the_bot_and_loads_the_rules():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "nancemakina"]
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:8000"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    for rules in config["rule_files"]:
        assert (DEPLOY / "prometheus" / rules).is_file()


def alert_rules() -> dict[str, dict[str, object]]:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"]}


def test_alert_rules_cover_the_operational_risks():
    rules = alert_rules()
    assert {
        "NancemakinaDown",
        "NancemakinaWebSocketDisconnected",
        "NancemakinaNakedPosition",
        "NancemakinaPairParked",
        "NancemakinaRestartStorm",
        "NancemakinaCandleGapUnrepaired",
        "NancemakinaIpBanned",
        "NancemakinaRateLimited",
        "NancemakinaPositionWithoutStopPrice",
        "NancemakinaEquityDrawdown",
        "NancemakinaStopLossStreak",
        "NancemakinaWalletBalanceUnknown",
    } <= set(rules)
    assert "up" in str(rules["NancemakinaDown"]["expr"])
    assert rules["NancemakinaDown"]["for"] == "1m"
    assert rules["NancemakinaWebSocketDisconnected"]["for"] == "1m"
    assert 'code="418"' in str(rules["NancemakinaIpBanned"]["expr"])
    assert 'code="429"' in str(rules["NancemakinaRateLimited"]["expr"])
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name  # type: ignore[index]
        assert rule["annotations"]["summary"], name  # type: ignore[index]


def test_every_metric_in_the_alerts_exists():
    exposed = exposed_names()
    used = {n for r in alert_rules().values() for n in METRIC_NAME.findall(str(r["expr"]))}
    assert used, "no metric names found in alerts.yml"
    assert used - exposed == set()


# -- Grafana ---------------------------------------------------------------------------------------------------
def dashboard() -> dict[str, object]:
    loaded: dict[str, object] = json.loads((DEPLOY / "grafana" / "nancemakina-dashboard.json").read_text())
    return loaded


def dashboard_exprs() -> list[str]:
    panels = dashboard()["panels"]
    assert isinstance(panels, list)
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def test_dashboard_is_valid_grafana_json_with_the_expected_panels():
    d = dashboard()
    assert d["schemaVersion"] == 39
    assert d["uid"]
    panels = d["panels"]
    assert isinstance(panels, list)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    titles = " | ".join(p["title"].lower() for p in panels)
    for wanted in ("websocket", "klines", "decisions", "orders", "active positions", "unrealized pnl",
                   "mailbox", "restarts", "gaps", "request weight", "alerts", "wallet balance and equity",
                   "realised pnl and fees", "closed trades by exit reason", "open positions with their stop"):  # fmt: skip
        assert wanted in titles, wanted
    for p in panels:
        assert {"x", "y", "w", "h"} <= set(p["gridPos"])


def test_every_metric_in_the_dashboard_exists():
    exposed = exposed_names()
    used = {n for e in dashboard_exprs() for n in METRIC_NAME.findall(e)}
    assert len(used) > 20
    assert used - exposed == set()


def test_promtool_accepts_the_rules_and_a_scrape() -> None:
    """``promtool check rules`` and ``promtool check metrics`` (Debian's prometheus package; CI installs it)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    rules = subprocess.run(
        [promtool, "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert rules.returncode == 0, rules.stdout + rules.stderr
    m = Metrics(mode="replay", version="9.9")
    m.configured("BTCUSDT", ("1m", "5m"))
    m.process_started(("USDT_M",))
    m.provide("trades_closed", lambda: {("BTCUSDT", "stop_loss"): 2})
    m.provide("fees_paid", lambda: {("BTCUSDT", "USDT"): 0.34351968})
    m.provide("realized_pnl", lambda: {("BTCUSDT", "USDT"): -2.0288})
    m.provide("equity", lambda: {"USDT": 9_997.6})
    m.provide("position_stop_price", lambda: {"BTCUSDT": 107_592.7})
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=m.exposition(), capture_output=True, check=False, timeout=60
    )
    assert lint.returncode == 0, (lint.stdout + lint.stderr).decode()
    assert (lint.stdout + lint.stderr).decode().strip() == ""


def test_metric_name_check_rejects_wrong_suffixes():
    """``_total`` on a gauge or ``_bucket`` on a counter would be a broken query: the check must see it."""
    exposed = exposed_names()
    assert "nancemakina_errors_total" in exposed
    assert "nancemakina_indicator_update_duration_seconds_bucket" in exposed
    assert "nancemakina_pairs_parked_total" not in exposed
    assert "nancemakina_errors_bucket" not in exposed
    assert "nancemakina_errors" not in exposed  # a bare counter family selects nothing
    assert "nancemakina_indicator_update_duration_seconds" not in exposed
    assert "nancemakina_pairs_parked" in exposed
