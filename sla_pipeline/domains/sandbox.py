"""Model-written Python, run where it can do no harm: the offline pipeline's only way to execute an answer
(the server never executes code).

One subprocess per program, started in a session of its own (its process group is killed at the end,
whatever it spawned) with:

    time      RLIMIT_CPU (CPU seconds do not depend on how busy the machine is), and a wall-clock limit
              behind it (the group is SIGKILLed) for a program that sleeps or waits
    memory    RLIMIT_AS (an allocation past it raises MemoryError)
    processes RLIMIT_NPROC for the user it runs as (a fork bomb stops at the limit)
    output    stdout and stderr drained as they come; past `output_bytes` the group is killed
    network   none: a network namespace of its own, with only a loopback that is down (`unshare --net`)
    files     a fresh private /tmp (tmpfs) as its folder, the program running as `nobody`, so a write
              anywhere else is refused; its PID namespace dies with it, so nothing it started survives

The isolation needs `unshare` and root (as in this project's containers and CI); where either is missing the
program still runs in its own process group with every rlimit, and `Isolation.available()` says what is
missing (it is logged once). The program reports to the caller on the file descriptor named by its
environment's SLA_REPORT_FD, one JSON object per line, so that what it prints cannot be mistaken for a result.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)
NOBODY = 65534
LAUNCHER = Path(__file__).with_name("sandbox_launcher.py")


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 10
    wall_s: float = 30.0
    memory_bytes: int = 1 << 30  # address space
    processes: int = 64  # for the sandbox user, all its sandboxes together
    output_bytes: int = 1 << 20  # stdout and stderr each
    kept_bytes: int = 4096  # of stdout and stderr each, in the result

    def __post_init__(self) -> None:
        if (self.cpu_s < 1 or self.wall_s <= 0 or self.memory_bytes < 64 << 20 or self.processes < 1
                or self.output_bytes < 1):
            raise ValueError(f"invalid sandbox limits: {self}")


@dataclass(frozen=True)
class RunResult:
    exit_code: int | None  # None: killed by the sandbox (see `reason`)
    stdout: str  # the first `kept_bytes`
    stderr: str
    reports: list[dict] = field(default_factory=list)  # what the program wrote on its report descriptor
    reason: str | None = None  # why it did not finish cleanly: "timeout", "output limit", "exit code 1", ...
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class Isolation:
    namespaces: bool  # network, PID and mount namespaces
    drop_to_nobody: bool

    @staticmethod
    @cache
    def available() -> Isolation:
        root = os.geteuid() == 0
        unshare = shutil.which("unshare")
        works = False
        if unshare and root:
            probe = subprocess.run([unshare, "--net", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc",
                                    "true"], capture_output=True, timeout=30)
            works = probe.returncode == 0
        isolation = Isolation(works, root)
        if not works:
            log.warning("model-written code runs without network, PID and mount namespaces (%s): rlimits and a "
                        "process group only", "unshare failed" if unshare and root else
                        "not root" if unshare else "no unshare command")
        return isolation


def _world_runnable(path: str) -> bool:
    """Whether a user who owns nothing can run `path`: the file and every folder above it are o+x."""
    real = Path(os.path.realpath(path))
    return all(os.stat(p).st_mode & 0o001 for p in (real, *real.parents))


@cache
def sandbox_python() -> str:
    """A Python 3 the sandbox user may run: this one if it can, else the system's (pyenv's lives under
    /root, closed to others)."""
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3")):
        if candidate and os.path.exists(candidate) and _world_runnable(candidate):
            return os.path.realpath(candidate)
    raise RuntimeError("no Python 3 that the sandbox user (nobody) may run: install one outside /root")


def _drain(stream, limit: int, kept: int, out: list[bytes], over: threading.Event) -> None:
    """Reads `stream` to its end, keeping the first `kept` bytes; sets `over` past `limit` bytes."""
    total = 0
    while chunk := stream.read(65536):
        if total < kept:
            out.append(chunk[: kept - total])
        total += len(chunk)
        if total > limit:
            over.set()
    stream.close()


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_python(program: str, limits: Limits = Limits()) -> RunResult:
    """Runs `program` (Python source) sandboxed; returns when it and everything it started are gone."""
    isolation = Isolation.available()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sla-sandbox-") as staging:
        source = Path(staging) / "program.py"
        source.write_text(program, encoding="utf-8")
        os.chmod(staging, 0o755)  # the launcher reads it as root; the program never sees this folder
        command = [sys.executable, "-I", str(LAUNCHER), str(source), json.dumps({
            "memory_bytes": limits.memory_bytes, "cpu_s": limits.cpu_s,
            "processes": limits.processes, "private_tmp": isolation.namespaces,
            "user": NOBODY if isolation.drop_to_nobody else None,
            "python": sandbox_python() if isolation.drop_to_nobody else sys.executable})]
        if isolation.namespaces:
            command = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc", *command]
        report_read, report_write = os.pipe()
        try:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, pass_fds=(report_write,), start_new_session=True,
                                       env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                                            "SLA_REPORT_FD": str(report_write)})
        finally:
            os.close(report_write)
        over = threading.Event()
        outputs: dict[str, list[bytes]] = {"stdout": [], "stderr": [], "report": []}
        readers = [threading.Thread(target=_drain, args=(stream, limit, kept, outputs[name], over), daemon=True)
                   for name, stream, limit, kept in (
                       ("stdout", process.stdout, limits.output_bytes, limits.kept_bytes),
                       ("stderr", process.stderr, limits.output_bytes, limits.kept_bytes),
                       ("report", os.fdopen(report_read, "rb"), limits.output_bytes, limits.output_bytes))]
        for r in readers:
            r.start()
        reason = None
        deadline = start + limits.wall_s
        while process.poll() is None:
            if over.is_set():
                reason = "output limit"
            elif time.perf_counter() > deadline:
                reason = "timeout"
            if reason:
                break
            over.wait(0.02)
        _kill_group(process)  # whatever it left behind (the PID namespace, where there is one, is gone already)
        process.wait()
        for r in readers:
            r.join(timeout=5)
        if reason is None and over.is_set():
            reason = "output limit"
    reports = []
    for line in b"".join(outputs["report"]).decode("utf-8", "replace").splitlines():
        try:
            reports.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line the program itself wrote on the report descriptor, or one cut by a kill
    endings = [r for r in reports if isinstance(r, dict) and "sandbox" in r]  # the launcher's, last
    reports = [r for r in reports if r not in endings]
    code = None
    if reason is None:
        code, reason = _ending(endings[-1] if endings else None, process.returncode)
    return RunResult(code, b"".join(outputs["stdout"]).decode("utf-8", "replace"),
                     b"".join(outputs["stderr"]).decode("utf-8", "replace"), reports, reason,
                     time.perf_counter() - start)


SIGNALS = {"SIGXCPU": "cpu time limit", "SIGKILL": "killed (cpu time or memory limit)",
           "SIGXFSZ": "file size limit"}


def _ending(ending: dict | None, launcher_code: int) -> tuple[int | None, str | None]:
    """The program's exit code and why it failed (None: exit code 0), from the launcher's report."""
    if ending is None:
        return None, f"the sandbox launcher failed (exit code {launcher_code})"
    if ending["sandbox"] == "signal":
        return None, SIGNALS.get(ending["name"], f"killed by {ending['name']}")
    code = int(ending["code"])
    return code, None if code == 0 else f"exit code {code}"
