"""Where the model store keeps its files."""

from __future__ import annotations

from sla_engine.store.store import default_cache_dir


def test_cache_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("SLA_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("SLA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "sla"
