"""Starting the engines one server (or `sla bench`) runs: the policy engine, with its reward head if it has
one, and for the `rsd` strategy a second engine on a larger target model with the same tokenizer."""

from __future__ import annotations

import asyncio
import dataclasses

from sla_engine.engine.config import EngineConfig
from sla_engine.engine.engine import Engine


def target_config(config: EngineConfig, model_path: str, served_name: str) -> EngineConfig:
    """The target engine's settings: the policy engine's, on another model, without a reward head."""
    return dataclasses.replace(config, model_path=model_path, served_name=served_name, reward_head=None)


async def start_engines(config: EngineConfig, target: EngineConfig | None = None) -> tuple[Engine, Engine | None]:
    """Both engines, started one after the other; refuses a target whose tokenizer differs (speculative
    decoding hands token ids between them) and decodes the vocabulary once here (rsd's step ends), off the
    event loop, rather than at the first request."""
    engine = await Engine.start(config)
    if target is None:
        return engine, None
    try:
        second = await Engine.start(target)
    except BaseException:
        engine.shutdown()
        raise
    if not engine.same_tokenizer(second):
        engine.shutdown()
        second.shutdown()
        raise ValueError(f"the target model {target.served_name} does not share the served model's tokenizer; "
                         "speculative decoding needs the same token ids")
    await asyncio.to_thread(lambda: engine.token_texts)
    return engine, second
