"""`sla bench`'s command line: bad plans are refused before any engine starts."""

from __future__ import annotations

import pytest

from sla.cli import main


@pytest.mark.parametrize("argv, message", [
    (["bench", "--strategy", 'r={"strategy": "rsd"}'], "rsd needs --target-model"),
    (["bench", "--strategy", 's={"strategy": "sla", "width": 99}'], "width"),
    (["bench", "--concurrency", "0"], "concurrency"),
])
def test_bench_refuses_bad_plans_before_any_engine_starts(argv, message, capsys):
    assert main(["bench", "--model", "no-such-model-anywhere", *argv[1:]]) == 2
    assert message in capsys.readouterr().err
