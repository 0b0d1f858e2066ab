"""deploy/smoke.sh, the compose stack run for real: on demand (`pytest -m deploy`, ~30 min, root), never in CI;
and its committed report, which must show every check passing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.helpers.paths import ROOT

REPORT = ROOT / "deploy" / "smoke-report.json"


def test_the_committed_smoke_report_shows_every_check_passing():
    report = json.loads(REPORT.read_text())
    checks = {c["check"]: c for c in report["checks"]}
    assert report["passed"] and all(c["ok"] for c in checks.values())
    crash = next(c for name, c in checks.items() if name.startswith("engine killed"))
    assert crash["restarts"] >= 1 and crash["server_exit_code"] not in ("", "0") and crash["chat_after"]
    stop = next(c for name, c in checks.items() if name.startswith("docker-compose stop"))
    assert stop["exit_code"] == 0 and stop["stop_s"] < float(stop["grace"].rstrip("s"))
    assert checks["stream admitted before the stop"]["finish_reason"] in ("stop", "length")
    assert checks["every dashboard query has a series"]["empty"] == []
    assert set(report["times_s"]) >= {"image_build", "first_healthy", "restart_to_healthy"}


def why_not() -> str | None:
    """Why the smoke run cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (dockerd, debootstrap, apt)"
    for tool in ("dockerd", "docker", "debootstrap"):
        if not shutil.which(tool):
            return f"no {tool}: apt-get install docker.io docker-compose debootstrap"
    if not (shutil.which("docker-compose") or subprocess.run(["docker", "compose", "version"],
                                                             capture_output=True).returncode == 0):
        return "neither docker-compose nor the compose v2 plugin"
    return None


@pytest.mark.deploy
def test_the_stack_comes_up_survives_an_engine_crash_and_stops_cleanly():
    if reason := why_not():
        pytest.skip(f"deploy/smoke.sh cannot run here: {reason}")
    done = subprocess.run([str(ROOT / "deploy" / "smoke.sh")], capture_output=True, text=True, timeout=5400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert json.loads(REPORT.read_text())["passed"]
