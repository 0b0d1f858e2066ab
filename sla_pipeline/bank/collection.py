"""One collection of the sample bank on disk: sealed gzip parts plus one open JSON Lines file.

    <collection>/parts/part-00000.jsonl.gz ...   sealed: never rewritten
    <collection>/open.jsonl                       appended one flushed line per record while generating

Appending goes to `open.jsonl` (data/jsonl.py: a crash loses at most the line being written). `seal()`
compresses the open file's records into the next part — written under a temporary name, synced, then renamed
— and only then removes the open file, so a crash at any point loses nothing; records a crash left in both
places are read once (the first copy of an id wins, and sealing skips ids already sealed).
A line that is not a valid record is reported with its file and line number and skipped.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

from sla_pipeline.bank.record import BankRecord
from sla_pipeline.data.jsonl import BadLine, JsonlWriter, read_jsonl

log = logging.getLogger(__name__)
OPEN_FILE = "open.jsonl"


class Collection:
    def __init__(self, folder: Path):
        self.folder = folder

    @property
    def open_path(self) -> Path:
        return self.folder / OPEN_FILE

    def parts(self) -> list[Path]:
        return sorted((self.folder / "parts").glob("part-*.jsonl.gz"))

    def writer(self) -> JsonlWriter:
        return JsonlWriter(self.open_path)

    def append(self, records: list[BankRecord]) -> None:
        with self.writer() as w:
            for r in records:
                w.write(r.to_json())

    def records(self, bad: list[BadLine] | None = None) -> Iterator[BankRecord]:
        """Every record, sealed parts first, each id once."""
        seen: set[str] = set()
        for source in [*self.parts(), self.open_path]:
            lines = (read_gzip_jsonl(source, bad) if source.suffix == ".gz"
                     else read_jsonl(source, BankRecord.from_json, bad))
            for record in lines:
                if record.id not in seen:
                    seen.add(record.id)
                    yield record

    def ids(self) -> set[str]:
        return {r.id for r in self.records()}

    def seal(self) -> Path | None:
        """Moves the open file's records into a new compressed part; returns it (None: nothing to seal)."""
        if not self.open_path.exists():
            return None
        sealed: set[str] = set()
        for part in self.parts():
            sealed |= {r.id for r in read_gzip_jsonl(part)}
        fresh, seen = [], set(sealed)
        for r in read_jsonl(self.open_path, BankRecord.from_json):
            if r.id not in seen:
                seen.add(r.id)
                fresh.append(r)
        part = None
        if fresh:
            existing = self.parts()
            number = int(existing[-1].name.split("-")[1].split(".")[0]) + 1 if existing else 0
            part = self.folder / "parts" / f"part-{number:05d}.jsonl.gz"
            part.parent.mkdir(parents=True, exist_ok=True)
            tmp = part.with_name(part.name + ".tmp")
            # mtime=0: the same records always give the same bytes (git sees no change on a re-seal)
            with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
                for r in fresh:
                    gz.write((json.dumps(r.to_json(), ensure_ascii=False) + "\n").encode())
                gz.close()
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(tmp, part)
        self.open_path.unlink()
        return part


def read_gzip_jsonl(path: Path, bad: list[BadLine] | None = None) -> Iterator[BankRecord]:
    """Records of a sealed part; a line that does not parse, or a damaged end of the stream, is reported."""
    number = 0
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield BankRecord.from_json(json.loads(line))
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                    report(BadLine(path, number, f"{type(e).__name__}: {e}"), bad)
    except (EOFError, OSError, zlib.error) as e:
        report(BadLine(path, number + 1, f"damaged gzip stream: {e}"), bad)


def report(problem: BadLine, bad: list[BadLine] | None) -> None:
    log.warning("skipping malformed line %s", problem)
    if bad is not None:
        bad.append(problem)
