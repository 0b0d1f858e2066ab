"""The sandbox's first process (sandbox.py), run as root inside fresh namespaces where there are some:
it gives the program a private /tmp as its folder, then forks the program, which sets its rlimits, drops to
the sandbox user and runs; the launcher waits for it and reports how it ended on the report descriptor
({"sandbox": "exit", "code": 0} or {"sandbox": "signal", "name": "SIGXCPU"}). Where it is the PID namespace's
first process, its exit takes everything the program left behind with it. Standard library only; run with
`python -I`.

    python -I sandbox_launcher.py PROGRAM.py '{"memory_bytes": ..., "cpu_s": ..., "processes": ...,
                                              "private_tmp": true, "user": 65534, "python": "/usr/bin/python3"}'
"""

import json
import os
import resource
import signal
import subprocess
import sys


def main() -> None:
    program_path, settings = sys.argv[1], json.loads(sys.argv[2])
    with open(program_path, encoding="utf-8") as fh:
        program = fh.read()
    if settings["private_tmp"]:  # this mount namespace's own: the host's /tmp is out of sight
        for where in ("/tmp", "/var/tmp", "/dev/shm"):
            if os.path.isdir(where):
                subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "tmpfs", where], check=True)
        folder = "/tmp/work"
    else:
        folder = os.path.join(os.path.dirname(program_path), "work")
    os.mkdir(folder, 0o700)
    main_py = os.path.join(folder, "main.py")
    with open(main_py, "w", encoding="utf-8") as fh:
        fh.write(program)
    user = settings["user"]
    if user is not None:
        os.chown(folder, user, user)
        os.chown(main_py, user, user)
    os.chdir(folder)
    child = os.fork()
    if child == 0:
        run_program(main_py, folder, settings)
    _, status = os.waitpid(child, 0)
    outcome = ({"sandbox": "signal", "name": signal.Signals(os.WTERMSIG(status)).name} if os.WIFSIGNALED(status)
               else {"sandbox": "exit", "code": os.WEXITSTATUS(status)})
    with os.fdopen(int(os.environ["SLA_REPORT_FD"]), "w") as report:
        report.write(json.dumps(outcome) + "\n")


def run_program(main_py: str, folder: str, settings: dict) -> None:
    """In the forked child: limits, the sandbox user, then the program in place of this process."""
    try:
        for limit, value in ((resource.RLIMIT_AS, settings["memory_bytes"]), (resource.RLIMIT_CPU, settings["cpu_s"]),
                             (resource.RLIMIT_NPROC, settings["processes"]), (resource.RLIMIT_CORE, 0),
                             (resource.RLIMIT_FSIZE, 16 << 20)):
            resource.setrlimit(limit, (value, value))
        user = settings["user"]
        if user is not None:
            os.setgroups([])
            os.setgid(user)
            os.setuid(user)
        env = {"PATH": "/usr/bin:/bin", "HOME": folder, "TMPDIR": folder, "LANG": "C.UTF-8",
               "SLA_REPORT_FD": os.environ["SLA_REPORT_FD"]}
        os.execve(settings["python"], [settings["python"], "-I", "-B", main_py], env)
    finally:
        os._exit(127)  # only reached when the exec failed

if __name__ == "__main__":
    main()
