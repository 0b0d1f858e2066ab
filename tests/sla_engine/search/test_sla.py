"""SLA on a real engine with tiny models: the commits a hand computation of the rule predicts, look-ahead that finds
what greedy misses, the fork columns, aborts."""

from __future__ import annotations

import asyncio
import math

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM
from vllm import SamplingParams

from sla_engine.engine import EngineConfig
from sla_engine.reward import ChannelConfig, RewardChannel, RewardHead
from sla_engine.search import SlaConfig, SlaSearch
from tests.helpers.engine_thread import EngineThread
from tests.helpers.sla_reference import ReferenceModel
from tests.helpers.tiny_models import make_random_head, make_tiny_model

pytestmark = pytest.mark.engine

PROMPT = [1000 + 37 * i % 5000 for i in range(70)]


def token_head(model_folder, out, token: int, beta: float = 40.0):
    """A head whose reward is ≈ beta/2 at positions holding `token` and ≈ 0 elsewhere: the first channel
    unit fires on the token's own embedding (the channel's input at layer 0) and the rest carries it up."""
    config = AutoConfig.from_pretrained(model_folder)
    h = config.hidden_size
    embedding = AutoModelForCausalLM.from_pretrained(model_folder).get_input_embeddings().weight[token].detach()
    channel = RewardChannel(ChannelConfig(h, config.num_hidden_layers, width=8))
    with torch.no_grad():
        for name, p in channel.named_parameters():
            p.fill_(1.0 if name.startswith("norms.") else 0.0)
        unit = embedding / embedding.pow(2).mean().sqrt()  # RMSNorm of the embedding
        channel.projs[0].weight[0] = beta * unit / h  # → beta · cos(embedding at the position, embedding of token)
        channel.projs[0].bias[0] = -beta / 2
        channel.head.weight[0, h] = 1.0
    return RewardHead.from_channel(channel, f"token-{token}", model_folder).save(out)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = make_tiny_model("llama", tmp_path_factory.mktemp("tiny-llama"), seed=1)
    return folder


def engine_with(folder, head) -> EngineThread:
    return EngineThread(EngineConfig(model_path=str(folder), served_name="tiny", reward_head=str(head),
                                     max_model_len=1024, kv_cache_gib=0.5, warmup=False))


def run_sla(runner: EngineThread, config: SlaConfig, max_tokens: int, prompt=PROMPT):
    async def go():
        search = SlaSearch(runner.engine, prompt, config, max_tokens)
        commits = [c async for c in search.commits()]
        return commits, search.stats

    return runner.run(go())


def run_greedy(runner: EngineThread, max_tokens: int, prompt=PROMPT) -> list[int]:
    async def go():
        async for out in runner.engine.generate(prompt, SamplingParams(max_tokens=max_tokens, temperature=0.0)):
            pass
        return list(out.outputs[0].token_ids)

    return runner.run(go())


@pytest.fixture(scope="module")
def random_head(tiny, tmp_path_factory):
    head = make_random_head(tiny, tmp_path_factory.mktemp("head"), seed=11)
    runner = engine_with(tiny, head)
    yield head, runner
    runner.close()


def test_sla_commits_what_the_hand_computed_rule_says(tiny, random_head):
    head, runner = random_head
    ref = ReferenceModel(tiny, head)
    for n, k, d in [(2, 4, 2), (3, 3, 1)]:
        expected, margins = ref.sla(PROMPT, n, k, d, budget=24)
        assert min(margins) > 1e-3, "near-ties would make the comparison depend on rounding"
        commits, stats = run_sla(runner, SlaConfig(n, k, d), 24)
        assert [t for c in commits for t in c.tokens] == expected, (n, k, d)
        assert expected != run_greedy(runner, 24), "the search must have chosen something greedy would not"
        assert commits[-1].finish_reason == "length" and all(c.finish_reason is None for c in commits[:-1])
        # tree invariants: never more live requests than n^(d+1) leaves; the first chunk, a lone candidate,
        # streams as it is written (more than one piece), every later one is chosen and commits whole
        assert 1 < stats.peak_live_branches <= n ** (d + 1)
        sizes = [len(c.tokens) for c in commits if c.tokens]  # a lone chunk's last reward may come on its own
        first = next(i for i in range(len(sizes)) if sum(sizes[: i + 1]) == k)
        assert first >= 1 and sizes[first + 1:] == [k] * (24 // k - 1), sizes
        assert stats.tokens_emitted == 24 and stats.tokens_generated > 24
        assert stats.branches_forked > 0 and stats.branches_aborted > 0
    assert runner.engine.num_unfinished_requests() == 0


def test_looking_ahead_to_the_end_commits_what_the_hand_computed_rule_says(tiny, random_head):
    """`lookahead: "end"`: at every boundary of the committed answer its forks are rolled out to the end and
    read whole; only the runner-up starts a request (the greedy child's request is already writing)."""
    head, runner = random_head
    ref = ReferenceModel(tiny, head)
    n, k, budget = 2, 4, 24
    expected, margins = ref.sla_to_end(PROMPT, n, k, budget, readout="last")  # a value head's read-out
    assert min(margins) > 1e-3, "near-ties would make the comparison depend on rounding"
    assert expected != ref.sla(PROMPT, n, k, 2, budget, readout="last")[0], "the reach must change a choice"
    config = SlaConfig(n, k, depth=0, score="last", lookahead="end")  # depth is not used
    commits, stats = run_sla(runner, config, budget)
    assert [t for c in commits for t in c.tokens] == expected
    assert expected != run_greedy(runner, budget)
    decisions = budget // k - 1  # every boundary after the first chunk, one runner-up each
    assert stats.branches_forked == decisions and stats.peak_live_branches == n
    assert stats.tokens_emitted == budget and commits[-1].finish_reason == "length"
    assert runner.engine.num_unfinished_requests() == 0


def test_width_1_and_depth_0_are_greedy_token_for_token(random_head):
    head, runner = random_head
    greedy = run_greedy(runner, 30)
    # fork_min_p 1 keeps only forks as likely as the top token: every candidate is alone
    for config in (SlaConfig(1, 4, 2), SlaConfig(2, 4, 0), SlaConfig(1, 7, 0), SlaConfig(2, 4, 2, fork_min_p=1.0)):
        commits, stats = run_sla(runner, config, 30)
        assert [t for c in commits for t in c.tokens] == greedy, config
        assert stats.peak_live_branches == 1 and stats.branches_aborted == 0


def test_look_ahead_finds_a_chunk_that_greedy_and_depth_0_miss(tiny, tmp_path):
    """The reward fires on one token X that occurs only two chunks below the second-ranked candidate:
    only a depth-2 look-ahead sees it, so SLA must commit that candidate where greedy takes the first."""
    k, n = 4, 2
    probe = ReferenceModel(tiny, make_random_head(tiny, tmp_path / "any"))
    first = probe.chunk(PROMPT, [], None, k)
    top = probe.top(PROMPT + first, n)
    c1, c2 = (probe.chunk(PROMPT, first, t, k) for t in top)
    shallow = set(first) | set(c1) | set(c2)
    near = {t for c in (c1, c2) for leaf in probe.subtree(PROMPT, c, n, k, 1, 99) for t in leaf}
    below_c1 = {t for leaf in probe.subtree(PROMPT, c1, n, k, 2, 99) for t in leaf}
    below_c2 = {t for leaf in probe.subtree(PROMPT, c2, n, k, 2, 99) for t in leaf}
    only_deep_in_c2 = sorted(below_c2 - below_c1 - near - shallow)
    assert only_deep_in_c2, "the tiny model must offer such a token for this test"
    head = token_head(tiny, tmp_path / "token-head", only_deep_in_c2[0])

    runner = engine_with(tiny, head)
    try:
        commits, _ = run_sla(runner, SlaConfig(n, k, 2), 4 * k)
        tokens = [t for c in commits for t in c.tokens]
        greedy = run_greedy(runner, 4 * k)
        assert greedy[: 2 * k] == c1  # greedy, and a depth-0 search, continue with the first candidate
        depth0, _ = run_sla(runner, SlaConfig(n, k, 0), 4 * k)
        assert [t for c in depth0 for t in c.tokens][: 2 * k] == c1
        assert tokens[: 2 * k] == c2  # the look-ahead saw X below the second one
        assert only_deep_in_c2[0] in tokens
    finally:
        runner.close()


def test_fork_columns_carry_the_models_top_tokens(tiny, random_head):
    head, runner = random_head
    ref = ReferenceModel(tiny, head)
    ids = runner.engine.reward

    async def one_step():
        params = SamplingParams(max_tokens=1, temperature=0.0, detokenize=False)
        async for out in runner.engine.generate(PROMPT, params):
            pass
        return out.outputs[0].logprobs[0]

    position = runner.run(one_step())
    assert ids.top_tokens(position, 8) == ref.top(PROMPT, 8)
    with torch.no_grad():
        log_p = ref.backbone(torch.tensor([PROMPT])).logits[0, -1].log_softmax(-1)
    top = log_p.topk(3).values.tolist()
    served = [position[c].logprob - position[ids.zero].logprob for c in ids.fork_logprob[:3]]
    assert served == pytest.approx(top, abs=1e-4)
    # a min_p between the second's and the third's ratio to the first keeps exactly two
    between = math.exp((top[1] + top[2]) / 2 - top[0])
    assert top[1] - top[2] > 1e-3 and ids.top_tokens(position, 8, between) == ref.top(PROMPT, 2)


def test_closing_a_search_early_aborts_every_branch(random_head):
    head, runner = random_head

    async def go():
        searches = [SlaSearch(runner.engine, PROMPT + [i], SlaConfig(2, 4, 2), 200) for i in range(6)]

        async def first_chunk_then_drop(s):
            gen, emitted, finish = s.commits(), 0, None
            while emitted <= 4 and finish is None:  # the first chunk streams in pieces, then a chosen one follows
                commit = await gen.__anext__()
                emitted, finish = emitted + len(commit.tokens), commit.finish_reason
            await gen.aclose()
            return finish is None

        dropped = await asyncio.gather(*(first_chunk_then_drop(s) for s in searches))
        return [s for s, d in zip(searches, dropped) if d]

    searches = runner.run(go())
    # first children go on in their parent's request; the others are requests of their own, running too
    assert len(searches) >= 3 and all(s.stats.branches_forked >= 1 for s in searches)
    assert all(s.stats.branches_aborted >= 2 for s in searches)  # the look-ahead that was running was aborted
    assert runner.engine.num_unfinished_requests() == 0
    runner.run(asyncio.sleep(0.5))
    assert runner.engine.scheduler_counts.running == 0 and runner.engine.scheduler_counts.waiting == 0


def test_sla_scores_leaves_by_the_read_out_asked_or_declared_by_the_head(tiny, random_head, tmp_path):
    """`score: "last"` compares leaves by the reward at their last token (a value head's read-out) instead of
    their mean; a head that declares that read-out is read that way without being asked."""
    head, runner = random_head
    ref = ReferenceModel(tiny, head)
    n, k, d = 2, 4, 2
    by_mean, _ = ref.sla(PROMPT, n, k, d, budget=24)
    by_last, margins = ref.sla(PROMPT, n, k, d, budget=24, readout="last")
    assert by_last != by_mean, "this head must make the two read-outs choose differently"
    assert min(margins) > 1e-3
    commits, stats = run_sla(runner, SlaConfig(n, k, d, score="last"), 24)
    assert [t for c in commits for t in c.tokens] == by_last and stats.settings["score"] == "last"
    loaded = RewardHead.load(head)
    value_head = RewardHead(loaded.config, loaded.base_model, loaded.base_model_sha256, loaded.state_dict,
                            readout="last").save(tmp_path / "value-head")
    declared = engine_with(tiny, value_head)
    try:
        assert declared.engine.readout == "last"
        commits, stats = run_sla(declared, SlaConfig(n, k, d), 24)
        assert [t for c in commits for t in c.tokens] == by_last and stats.settings["score"] == "last"
        commits, _ = run_sla(declared, SlaConfig(n, k, d, score="mean"), 24)  # a request may override it
        assert [t for c in commits for t in c.tokens] == by_mean
    finally:
        declared.close()
