"""JSON Lines files that survive crashes: appended one record at a time, read back line by line.

A malformed line (half-written by a crash, or edited by hand) is reported with its file and line number and
skipped; it never aborts the run that reads the file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class BadLine:
    path: Path
    line: int  # 1-based
    error: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.error}"


def read_jsonl(path: Path, parse: Callable[[dict], T], bad: list[BadLine] | None = None) -> Iterator[T]:
    """Records of `path` parsed by `parse`; a line that is not JSON or that `parse` rejects (KeyError,
    TypeError, ValueError) is logged, appended to `bad` if given, and skipped."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise TypeError(f"expected a JSON object, got {type(record).__name__}")
                yield parse(record)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                problem = BadLine(path, number, f"{type(e).__name__}: {e}")
                log.warning("skipping malformed line %s", problem)
                if bad is not None:
                    bad.append(problem)


class JsonlWriter:
    """Appends records, one flushed line each, so a crash loses at most the line being written."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._repair(path)
        self.path = path
        self._fh = open(path, "a", encoding="utf-8")

    @staticmethod
    def _repair(path: Path) -> None:
        """A crash mid-line leaves a last line without a newline: end it, so that the next record starts on
        a fresh line (the broken one is then reported and skipped by readers)."""
        if path.exists() and path.stat().st_size:
            with open(path, "rb+") as fh:
                fh.seek(-1, 2)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")

    def write(self, record: dict) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
