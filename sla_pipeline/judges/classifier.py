"""The `classifier` judge: a sequence-classification reward model (ArmoRM, Skywork-Reward and the like, the
kind of judge the SLA paper used) scores each answer; `margin` = the first's score − the second's.

The model is any local folder that `AutoModelForSequenceClassification` loads; a conversation is rendered
with the model's own chat template (instruction as the user turn, answer as the assistant turn) and its
score is the first output logit. It runs in transformers, off the event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import torch

from sla_pipeline.judges.methods import Case, Preference


class ClassifierJudge:
    name = "classifier"

    def __init__(self, folder: Path, dtype: torch.dtype = torch.float32):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=dtype).eval()
        self.lock = asyncio.Lock()  # one forward at a time: the model is not thread-safe, and the CPU is shared

    @torch.no_grad()
    def score_now(self, instruction: str, answer: str) -> float:
        messages = [{"role": "user", "content": instruction}, {"role": "assistant", "content": answer}]
        if self.tokenizer.chat_template:
            ids = self.tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
        else:
            ids = self.tokenizer(f"{instruction}\n\n{answer}")["input_ids"]
        return self.model(input_ids=torch.tensor([list(ids)])).logits[0, 0].item()

    async def score(self, instruction: str, answer: str) -> float:
        async with self.lock:
            return await asyncio.to_thread(self.score_now, instruction, answer)

    async def prefer(self, case: Case) -> Preference:
        first, second = await self.score(case.instruction, case.first), await self.score(case.instruction, case.second)
        return Preference(first - second)
