"""The frozen backbone's activations at response positions, computed once and cached on disk.

The channel has no attention, so the reward at a response token needs only that position's residual
streams (the input of every decoder layer) and its final normed hidden state: [L + 1, T, H] per response
(or only at some of its positions: a value head is trained at sparse positions, ~45 KB each),
stored in bf16 (the channel computes in fp32). Computing them costs one backbone forward per distinct
prompt plus one per response on top of the prompt's KV cache; training then reads them back each epoch instead of
running the backbone again (docs/reward-head.md, "Training":
measured on the default model, the forward is ~150 tok/s here, the cached epoch an order of magnitude faster).

Layout: `<dir>/shard-<random>.safetensors` ... plus `index.jsonl` mapping a sequence key to its shard; a shard
is renamed into place only when complete, and its index lines are written after, so an interrupted run
recomputes at most one shard. Shard names are random, never counted, so runs that fill one cache at the same
time (train beside score-pairs) cannot replace each other's shards.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from sla_engine.reward import RewardHead
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.data.jsonl import JsonlWriter, read_jsonl

SHARD_SEQUENCES = 64


@dataclass(frozen=True)
class TokenizedResponse:
    key: str
    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]
    positions: tuple[int, ...] | None = None  # the response positions whose features are kept; None: all

    @classmethod
    def from_ids(cls, prompt_ids, response_ids, positions: Sequence[int] | None = None) -> TokenizedResponse:
        """A response given by its token ids (the sample bank's), keeping the features of `positions` only."""
        kept = tuple(sorted(set(positions))) if positions is not None else None
        if kept and not 0 <= kept[0] <= kept[-1] < len(response_ids):
            raise ValueError(f"positions {kept[0]}..{kept[-1]} outside a response of {len(response_ids)} tokens")
        blob = json.dumps([list(prompt_ids), list(response_ids), kept])
        return cls(hashlib.sha256(blob.encode()).hexdigest()[:32], tuple(prompt_ids), tuple(response_ids), kept)


def frozen_backbone(model_path: Path | str):
    """The policy as every offline reader of its hidden states loads it: transformers, float32, eval mode (the
    features then match the engine's fp32 forward pass; nothing here trains it)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()


def sequence_key(prompt: Sequence[dict], response: str, max_response_tokens: int) -> str:
    blob = json.dumps([list(prompt), response, max_response_tokens], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def tokenize(tokenizer, prompt: Sequence[dict], response: str, max_response_tokens: int) -> TokenizedResponse:
    """Prompt ids exactly as the server renders them, then the response's ids (cut to the limit)."""
    prompt_ids = tokenizer.apply_chat_template(list(prompt), add_generation_prompt=True, tokenize=True,
                                               return_dict=False)
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"][:max_response_tokens]
    return TokenizedResponse(sequence_key(prompt, response, max_response_tokens), tuple(prompt_ids),
                             tuple(response_ids))


class FeatureCache:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.index: dict[str, str] = {r["key"]: r["shard"] for r in read_jsonl(folder / "index.jsonl", dict)}
        self._open: dict[str, object] = {}

    def __contains__(self, key: str) -> bool:
        return key in self.index

    def get(self, key: str) -> torch.Tensor:
        """[L + 1, T, H] bf16: the layer inputs at the response positions (the kept ones, for a response with
        `positions`), then the final normed state."""
        shard = self.index[key]
        if shard not in self._open:
            self._open[shard] = safe_open(str(self.folder / shard), framework="pt")
        return self._open[shard].get_tensor(key)

    def complete(self, model_path: Path, sequences: Sequence[TokenizedResponse]) -> FeatureCache:
        """Fills in whichever of `sequences` are missing, loading the backbone only if any are."""
        if any(s.key not in self for s in sequences):
            self.fill(frozen_backbone(model_path), sequences)
        return self

    @torch.no_grad()
    def fill(self, backbone, sequences: Iterable[TokenizedResponse], batch_tokens: int = 2048) -> None:
        """Computes and stores the features of every sequence not in the cache yet. Responses to the same
        prompt share one forward of the prompt (its KV cache is reused), so a prompt costs once, not once per
        response (GSM problems have 8 answers; dpo_demo prompts run to 3k tokens)."""
        todo = list({s.key: s for s in sequences if s.key not in self.index}.values())
        if not todo:
            return
        groups: dict[tuple[int, ...], list[TokenizedResponse]] = {}
        for s in todo:
            groups.setdefault(s.prompt_ids, []).append(s)
        total = sum(len(p) + sum(len(s.response_ids) for s in g) for p, g in groups.items())
        tensors: dict[str, torch.Tensor] = {}
        with JsonlWriter(self.folder / "index.jsonl") as index, \
                tqdm(total=total, desc="backbone features", unit="tok", unit_scale=True, dynamic_ncols=True) as bar:
            def flush() -> None:
                name = f"shard-{uuid.uuid4().hex}.safetensors"
                save_file(tensors, str(self.folder / f"{name}.tmp"))
                os.replace(self.folder / f"{name}.tmp", self.folder / name)
                for key in tensors:
                    index.write({"key": key, "shard": name})
                    self.index[key] = name
                tensors.clear()

            for prompt, group in groups.items():
                for key, feats in forward_group(backbone, prompt, group, batch_tokens):
                    tensors[key] = feats
                bar.update(len(prompt) + sum(len(s.response_ids) for s in group))
                if len(tensors) >= SHARD_SEQUENCES:
                    flush()
            if tensors:
                flush()


def forward_group(backbone, prompt: tuple[int, ...], group: list[TokenizedResponse],
                   batch_tokens: int) -> Iterable[tuple[str, torch.Tensor]]:
    """Features of responses to one prompt: the prompt once (keeping its KV cache), then the responses in
    right-padded batches on top of copies of that cache (causal attention: padding after a response cannot
    change it)."""
    out = backbone.model(input_ids=torch.tensor([prompt]), use_cache=True)
    prompt_cache = out.past_key_values
    group = sorted(group, key=lambda s: len(s.response_ids))
    for batch in _batches(group, batch_tokens):
        lengths = [len(s.response_ids) for s in batch]
        width = max(lengths)
        if width == 0:
            for s in batch:
                yield s.key, torch.zeros(backbone.config.num_hidden_layers + 1, 0, backbone.config.hidden_size,
                                         dtype=torch.bfloat16)
            continue
        ids = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.ones(len(batch), len(prompt) + width, dtype=torch.long)
        for i, s in enumerate(batch):
            ids[i, : lengths[i]] = torch.tensor(s.response_ids)
            mask[i, len(prompt) + lengths[i]:] = 0
        cache = copy.deepcopy(prompt_cache)
        cache.batch_repeat_interleave(len(batch))
        states = backbone.model(input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=True,
                                output_hidden_states=True).hidden_states
        stacked = torch.stack(list(states[:-1]) + [states[-1]])  # [L + 1, B, W, H]: layer inputs, final normed
        for i, s in enumerate(batch):
            kept = list(s.positions) if s.positions is not None else slice(0, lengths[i])
            yield s.key, stacked[:, i, kept].to(torch.bfloat16).contiguous()


def _batches(seqs: list[TokenizedResponse], batch_tokens: int) -> Iterable[list[TokenizedResponse]]:
    batch: list[TokenizedResponse] = []
    for s in seqs:  # sorted by length, so padding stays small
        longest = max(len(b.response_ids) for b in batch + [s])
        if batch and longest * (len(batch) + 1) > batch_tokens:
            yield batch
            batch = []
        batch.append(s)
    if batch:
        yield batch


@torch.no_grad()
def rewards_of(backbone, heads: list[RewardHead], answers: dict[str, tuple[BankRecord, int]],
               prompts: dict[str, list[int]]) -> list[dict[str, list[float]]]:
    """Per head, per answer id, the reward of every prefix it is read at."""
    channels = [h.channel().eval() for h in heads]
    groups: dict[str, list[TokenizedResponse]] = {}
    ids: dict[str, list[str]] = {}  # answers with the same tokens (samples often repeat greedy's) share one pass
    for a, seen in answers.values():
        response = TokenizedResponse.from_ids(prompts[a.item], a.token_ids[:seen])
        if response.key not in ids:
            groups.setdefault(a.item, []).append(response)
        ids.setdefault(response.key, []).append(a.id)
    out: list[dict[str, list[float]]] = [{} for _ in heads]
    for item, group in tqdm(groups.items(), desc="score answers", unit="problem"):
        for key, feats in forward_group(backbone, tuple(prompts[item]), group, 2048):
            x = feats.float()
            for channel, scores in zip(channels, out):
                rewards = channel(list(x[:-1]), x[-1]).tolist()
                scores.update((answer_id, rewards) for answer_id in ids[key])
    return out
