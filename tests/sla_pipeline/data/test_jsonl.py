"""Crash-safe JSON Lines, and runs that resume from them."""

from __future__ import annotations

import asyncio
import json

import pytest

from sla_pipeline.data.jsonl import BadLine, JsonlWriter, read_jsonl
from sla_pipeline.data.pairs import Pair, read_pairs
from sla_pipeline.data.resumable import run_resumable


def test_malformed_jsonl_lines_are_reported_with_line_numbers_and_skipped(tmp_path):
    path = tmp_path / "pairs.jsonl"
    good = Pair("p1", "gsm", "gsm/t1-s0-0", "train", ({"role": "user", "content": "q"},), "right", "wrong").to_json()
    lines = [json.dumps(good), "{not json", json.dumps({**good, "id": "p2", "split": "elsewhere"}), "[1, 2]",
             json.dumps({**good, "id": "p3"})]
    path.write_text("\n".join(lines) + "\n")
    bad: list[BadLine] = []
    pairs = read_pairs(path, bad)
    assert [p.id for p in pairs] == ["p1", "p3"]
    assert [b.line for b in bad] == [2, 3, 4]
    assert "split must be" in bad[1].error and str(bad[0]).startswith(f"{path}:2:")


def test_writer_ends_a_line_cut_by_a_crash_so_later_records_survive(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"a": 1}\n{"a": 2, "b"')  # the process died mid-line
    with JsonlWriter(path) as w:
        w.write({"a": 3})
    bad: list[BadLine] = []
    assert [r["a"] for r in read_jsonl(path, dict, bad)] == [1, 3]
    assert [b.line for b in bad] == [2]


def test_resumable_runs_keep_to_their_concurrency_and_write_each_result_as_it_returns(tmp_path):
    out, running, most = tmp_path / "done.jsonl", set(), [0]

    async def work(n: int) -> list[dict]:
        running.add(n)
        most[0] = max(most[0], len(running))
        await asyncio.sleep(0.01 * (n % 3))
        running.discard(n)
        if n == 7:
            raise RuntimeError("boom")
        return [{"n": n, "part": p} for p in range(n % 2 + 1)]

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(run_resumable(range(10), work, out, total=12, concurrency=3, desc="t", unit="item"))
    assert most[0] == 3
    written = list(read_jsonl(out, lambda r: (r["n"], r["part"])))
    # what finished before the failure is on disk, whole (both parts of odd items); the failed item is not
    assert 7 not in {n for n, _ in written} and len(written) == len(set(written))
    assert len({n for n, _ in written}) >= 5  # item 7 starts only once five others have finished
    assert all((n, 1) in written for n, p in written if n % 2)
