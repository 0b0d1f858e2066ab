"""A thin wrapper over vLLM's AsyncLLM: configuration with measured platform defaults, start-up, generation."""

from sla_engine.engine.config import EngineConfig
from sla_engine.engine.engine import Engine, PromptTooLongError, ScoredCompletion

__all__ = ["Engine", "EngineConfig", "PromptTooLongError", "ScoredCompletion"]
