"""The per-user model cache: pull packaged models once, reuse them on later runs, resolve names and folders."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sla_engine.store.catalog import CATALOG, PackagedModel, canonical
from sla_engine.store.convert import gguf_to_hf
from sla_engine.store.fetch import FetchError, assemble, download_parts

# Stored dtype, chosen by measurement on a 2-core AVX2 CPU (docs/measurements.md):
# bf16 is emulated there and decodes slower than fp32 at every batch size. GPUs cast at load time anyway.
STORED_DTYPE = torch.float32
MANIFEST = "sla-model.json"
CACHE_ENV = "SLA_CACHE_DIR"


class ModelStoreError(RuntimeError):
    """A model could not be found, pulled or verified; the message says what to do."""


def default_cache_dir() -> Path:
    if env := os.environ.get(CACHE_ENV):
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sla"


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # the name clients use in requests
    path: Path  # a Hugging Face model folder


@dataclass
class ModelStore:
    root: Path = field(default_factory=default_cache_dir)

    def path(self, name: str) -> Path:
        return self.root / "models" / name

    def is_ready(self, name: str) -> bool:
        return (self.path(name) / MANIFEST).is_file()

    def listing(self) -> list[tuple[PackagedModel, bool]]:
        return [(m, self.is_ready(m.name)) for m in CATALOG.values()]

    def resolve(self, name_or_path: str) -> ResolvedModel:
        """A packaged name or alias (pulled if needed) or a local Hugging Face folder."""
        name = canonical(name_or_path)
        if name in CATALOG:
            return ResolvedModel(name, self.pull(name))
        folder = Path(name_or_path).expanduser()
        if (folder / "config.json").is_file():
            return ResolvedModel(folder.name, folder.resolve())
        raise ModelStoreError(
            f"unknown model {name_or_path!r}: use one of {', '.join(CATALOG)} "
            "or a local Hugging Face model folder (with config.json)"
        )

    def pull(self, name: str) -> Path:
        """Download, assemble, verify and convert a packaged model; a no-op when it is already in the cache.

        Nothing half-written ever appears under models/: the folder is built in a staging area and renamed
        into place only when complete.
        """
        name = canonical(name)
        spec = CATALOG.get(name)
        if spec is None:
            raise ModelStoreError(f"unknown packaged model {name!r}; known: {', '.join(CATALOG)}")
        final = self.path(name)
        with self._lock(name):
            if self.is_ready(name):
                return final
            downloads = self.root / "downloads" / name
            staging = self.root / "tmp" / f"{name}-{uuid.uuid4().hex[:8]}"
            staging.mkdir(parents=True)
            try:
                wheels = download_parts(spec.parts, downloads)
                gguf = staging / f"{name}.gguf"
                assemble(spec.parts, wheels, gguf, spec.gguf_sha256)
                out = staging / "hf"
                gguf_to_hf(gguf, out, STORED_DTYPE, spec.generation)
                manifest = {"name": name, "gguf_sha256": spec.gguf_sha256, "dtype": str(STORED_DTYPE), "format": 1}
                (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
                if final.exists():  # leftovers of an interrupted older layout: never trusted
                    shutil.rmtree(final)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(out, final)
            except FetchError as e:
                raise ModelStoreError(f"could not pull {name}: {e}") from e
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(downloads, ignore_errors=True)
        return final

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        """Serialises pulls of one model across processes (a server and a test run, say)."""
        locks = self.root / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{name}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
