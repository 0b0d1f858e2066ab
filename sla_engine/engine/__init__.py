"""A thin wrapper over vLLM's AsyncLLM: configuration with measured platform defaults, start-up, generation."""

from sla_engine.engine.config import EngineConfig
from sla_engine.engine.engine import Engine, PromptTooLongError
from sla_engine.engine.startup import start_engines, target_config

__all__ = ["Engine", "EngineConfig", "PromptTooLongError", "start_engines", "target_config"]
