"""SLA computed by hand on the transformers fp32 model: a direct, slow transcription of
docs/background.md#sla-search that regenerates every look-ahead from scratch, to hold the engine's incremental
tree search against."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from sla_engine.reward import RewardHead
from tests.helpers.reference import reference_rewards


class ReferenceModel:
    def __init__(self, folder: Path, head: Path):
        self.backbone = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        self.channel = RewardHead.load(head).channel().eval()

    @torch.no_grad()
    def top(self, ids: list[int], n: int) -> list[int]:
        return self.backbone(torch.tensor([ids])).logits[0, -1].topk(n).indices.tolist()

    @torch.no_grad()
    def entropy(self, ids: list[int]) -> float:
        """The entropy (nats) of the next-token distribution after `ids`."""
        logp = torch.log_softmax(self.backbone(torch.tensor([ids])).logits[0, -1].float(), -1)
        return -(logp.exp() * logp).sum().item()

    def chunk(self, prompt: list[int], path: list[int], fork: int | None, size: int) -> list[int]:
        """`path` extended by `fork` (if any) and greedy tokens, `size` tokens in all."""
        out = path + ([fork] if fork is not None else [])
        for _ in range(size - (fork is not None)):
            out.append(self.top(prompt + out, 1)[0])
        return out

    def score(self, prompt: list[int], path: list[int], readout: str = "mean") -> float:
        """The path's mean reward, or (readout "last") the reward of the prefix ending at its last token."""
        rewards = reference_rewards(self.backbone, self.channel, prompt + path)[len(prompt):]
        return (rewards.mean() if readout == "mean" else rewards[-1]).item()

    def subtree(self, prompt: list[int], path: list[int], n: int, k: int, levels: int, budget: int) -> list[list[int]]:
        """The paths `levels` chunks below `path` (budget allowing), one per leaf."""
        if levels == 0 or len(path) >= budget:
            return [path]
        size = min(k, budget - len(path))
        return [
            leaf for t in self.top(prompt + path, n)
            for leaf in self.subtree(prompt, self.chunk(prompt, path, t, size), n, k, levels - 1, budget)
        ]

    def sla(self, prompt: list[int], n: int, k: int, d: int, budget: int,
            readout: str = "mean") -> tuple[list[int], list[float]]:
        """SLA's tokens, and at each two-way-or-more commit the margin between the best and second score."""
        path = self.chunk(prompt, [], None, min(k, budget))  # the first chunk is not branched
        margins = []
        while len(path) < budget:
            size = min(k, budget - len(path))
            candidates = [self.chunk(prompt, path, t, size) for t in self.top(prompt + path, n)]
            scores = [
                max(self.score(prompt, leaf, readout) for leaf in self.subtree(prompt, c, n, k, d, budget))
                for c in candidates
            ]
            best = max(range(len(candidates)), key=lambda i: scores[i])
            if len(scores) > 1:
                margins.append(scores[best] - sorted(scores)[-2])
            path = candidates[best]
        return path, margins

    def sla_to_end(self, prompt: list[int], n: int, k: int, budget: int,
                   readout: str = "mean") -> tuple[list[int], list[float]]:
        """SLA looking ahead to the end: at each chunk boundary the top-`n` forks, each rolled out greedily to
        `budget` tokens and scored whole; the best one's next chunk is committed. Its tokens and margins."""
        path = self.chunk(prompt, [], None, min(k, budget))
        margins = []
        while len(path) < budget:
            rollouts = [self.chunk(prompt, path, t, budget - len(path)) for t in self.top(prompt + path, n)]
            scores = [self.score(prompt, r, readout) for r in rollouts]
            best = max(range(len(rollouts)), key=lambda i: scores[i])
            margins.append(scores[best] - sorted(scores)[-2])
            path = rollouts[best][: len(path) + min(k, budget - len(path))]
        return path, margins

    def rewards(self, prompt: list[int], path: list[int]) -> list[float]:
        """The reward of the prefix ending at each token of `path`."""
        return reference_rewards(self.backbone, self.channel, prompt + path)[len(prompt):].tolist()

    @torch.no_grad()
    def entropies(self, ids: list[int]) -> list[float]:
        """At each position p, the entropy (nats) of the distribution of the token after ids[p]."""
        log_p = self.backbone(torch.tensor([ids])).logits[0].float().log_softmax(-1)
        return (-(log_p.exp() * log_p).sum(-1)).tolist()
