"""The Reward Transformer: a tiny reward channel beside the policy's decoder layers (SLA, arXiv 2503.00029).

One torch module (`channel.RewardChannel`) serves training (on a transformers backbone, `reference.py`)
and serving (inside vLLM, `vllm_models.py`); `columns.py` turns the engine's logprobs back into rewards.
"""

from sla_engine.reward.channel import ChannelConfig, RewardChannel
from sla_engine.reward.weights import RewardHead, RewardHeadError

__all__ = ["ChannelConfig", "RewardChannel", "RewardHead", "RewardHeadError"]
