"""The sandbox model-written code runs in: each hostile program is recorded as a failure with its reason,
nothing it started survives, the host is untouched, and the next program runs normally."""

from __future__ import annotations

import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from sla_pipeline.domains.sandbox import Isolation, Limits, run_python

QUICK = Limits(cpu_s=2, wall_s=4.0)
REPORT = "import os, json\nreport = os.fdopen(int(os.environ['SLA_REPORT_FD']), 'w')\n"
isolated = pytest.mark.skipif(not Isolation.available().namespaces,
                              reason="no network / PID / mount namespaces here (unshare needs root)")


def alive(marker: str) -> bool:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0


def test_a_clean_program_reports_prints_and_exits_zero():
    r = run_python(REPORT + "print('hello')\nreport.write(json.dumps({'n': 3}) + '\\n')", QUICK)
    assert r.ok and r.exit_code == 0 and r.stdout == "hello\n" and r.reports == [{"n": 3}]


def test_a_cpu_loop_is_killed_at_the_cpu_limit():
    r = run_python("while True: pass", QUICK)
    assert not r.ok and r.exit_code is None
    assert r.reason in ("killed (cpu time or memory limit)", "cpu time limit", "timeout")
    assert r.wall_s < QUICK.wall_s + 2


def test_a_sleeper_is_killed_at_the_wall_clock_limit():
    r = run_python("import time\ntime.sleep(60)", Limits(cpu_s=5, wall_s=1.0))
    assert r.reason == "timeout" and r.wall_s < 4


def test_unbounded_allocation_fails_with_memory_error():
    r = run_python("blocks = []\nwhile True: blocks.append(bytearray(10 ** 7))", Limits(memory_bytes=256 << 20))
    assert not r.ok and "MemoryError" in r.stderr


def test_a_fork_bomb_stops_and_nothing_it_started_survives():
    marker = f"sla-fork-bomb-{uuid.uuid4().hex}"
    program = ("import os, subprocess\n"
               f"subprocess.Popen(['sleep', '300', '{marker}'])\n"
               "while True:\n"
               "    try:\n"
               "        os.fork()\n"
               "    except OSError:\n"
               "        pass\n")
    r = run_python(program, Limits(cpu_s=2, wall_s=3.0, processes=32))
    assert not r.ok
    assert not alive(marker)


def test_a_background_process_does_not_outlive_a_clean_exit():
    marker = f"sla-survivor-{uuid.uuid4().hex}"
    r = run_python(f"import subprocess\nsubprocess.Popen(['sleep', '300', '{marker}'])\nprint('left')", QUICK)
    assert r.ok and r.stdout == "left\n"
    assert not alive(marker)


def test_writing_outside_its_folder_is_refused(tmp_path):
    target = tmp_path / "escape.txt"
    tmp_path.chmod(0o777)  # writable by anyone: only the sandbox can stop the write
    r = run_python(f"open({str(target)!r}, 'w').write('x')\nopen('inside.txt', 'w').write('ok')", QUICK)
    assert not r.ok and ("PermissionError" in r.stderr or "FileNotFoundError" in r.stderr)
    assert not target.exists()


@isolated
def test_its_tmp_is_private():
    name = f"sla-sandbox-{uuid.uuid4().hex}"
    r = run_python(f"open('/tmp/{name}', 'w').write('x')", QUICK)
    assert not r.ok and "PermissionError" in r.stderr
    assert not (Path("/tmp") / name).exists()


@isolated
def test_it_has_no_network():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        r = run_python(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)", QUICK)
    assert not r.ok and ("OSError" in r.stderr or "ConnectionRefused" in r.stderr or "unreachable" in r.stderr)


def test_sys_exit_is_an_exit_code():
    r = run_python("import sys\nsys.exit(3)", QUICK)
    assert r.exit_code == 3 and r.reason == "exit code 3"


def test_megabytes_of_output_stop_at_the_output_limit_and_are_truncated():
    flood = "import sys\nwhile True: sys.stdout.write('x' * 65536)"
    r = run_python(flood, Limits(output_bytes=1 << 20, kept_bytes=100))
    assert r.reason == "output limit" and r.stdout == "x" * 100


def test_the_next_program_runs_after_hostile_ones():
    for hostile in ("while True: pass", "import os\nos._exit(9)"):
        assert not run_python(hostile, QUICK).ok
    assert run_python("print(sum(range(10)))", QUICK).stdout == "45\n"
