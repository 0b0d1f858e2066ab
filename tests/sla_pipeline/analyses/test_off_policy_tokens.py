"""sla_pipeline/analyses/off_policy_tokens.py: an answer token's log-probability is read at the position before it (each
checked against the model run on the prompt and the answer up to that token alone)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sla_pipeline.analyses.off_policy_tokens import answer_logprobs
from tests.helpers.tiny_models import make_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = make_tiny_model("qwen2", tmp_path_factory.mktemp("tiny-qwen"), seed=3)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(folder)


@torch.no_grad()
def test_each_answer_token_is_scored_given_only_what_precedes_it(tiny):
    model, tokenizer = tiny
    messages = [{"role": "user", "content": "What is 6 times 7?"}]
    text = "The answer is 42."
    lp, top = answer_logprobs(model, tokenizer, messages, text)
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prefix = tokenizer(prompt, add_special_tokens=False).input_ids
    answer = tokenizer(text, add_special_tokens=False).input_ids
    assert len(lp) == len(top) == len(answer) > 3
    for i, token in enumerate(answer):
        log_p = model(torch.tensor([prefix + answer[:i]])).logits[0, -1].log_softmax(-1)
        assert lp[i].item() == pytest.approx(log_p[token].item(), abs=1e-4)
        assert bool(top[i]) == (log_p.argmax().item() == token)
    # a random model's argmax is not this text: the flag must say so somewhere
    assert not bool(top.all())
