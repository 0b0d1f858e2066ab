"""vLLM plugin entry point (`vllm.general_plugins` in pyproject.toml): registers the reward model classes,
and on the CPU keeps seeded requests from taking the engine down (sla_engine/cpu_seeds.py).

It runs in every vLLM process, the spawned engine core and workers included, which is why registration
cannot happen only in the caller's process.
"""

from __future__ import annotations

# The hf_config attribute that carries a head's settings into vLLM's worker processes (through hf_overrides):
# {"head": path, "ids": the RewardIds fields (columns.py)}.
REWARD_CONFIG_KEY = "sla_reward"

# base architecture → its reward-channel class in sla_engine.reward.vllm_models
ARCHITECTURES = {
    "Qwen2ForCausalLM": "SlaRewardQwen2ForCausalLM",
    "LlamaForCausalLM": "SlaRewardLlamaForCausalLM",
}


def register() -> None:
    from vllm import ModelRegistry
    from vllm.platforms import current_platform

    for reward_arch in ARCHITECTURES.values():
        if reward_arch not in ModelRegistry.get_supported_archs():
            ModelRegistry.register_model(reward_arch, f"sla_engine.reward.vllm_models:{reward_arch}")
    if current_platform.is_cpu():
        from sla_engine.cpu_seeds import keep_cpu_generators_through_discards

        keep_cpu_generators_through_discards()
