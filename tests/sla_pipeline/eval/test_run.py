"""`sla eval`'s plan, cached answers and judging, on fixed inputs."""

from __future__ import annotations

import asyncio
import math

import pytest

from sla_pipeline.data.sources import Item
from sla_pipeline.eval.generation import Generation, StaleAnswersError, Strategy, generate_all
from sla_pipeline.eval.judging import comparisons, uncached, verdicts_against_baseline
from sla_pipeline.eval.report import markdown, plot
from sla_pipeline.eval.run import EvalPlan
from sla_pipeline.eval.sets import EvalSet
from sla_pipeline.judges.methods import PairwiseJudge


def test_strategies_parse_from_name_and_search_body():
    s = Strategy.parse('sla-2-10-2={"strategy": "sla", "width": 2, "chunk": 10, "depth": 2}')
    assert s.name == "sla-2-10-2" and s.search["width"] == 2
    for bad in ("no-equals", 'x={"width": 2}', "x=[1]", "x=not json", 'bad name={"strategy": "greedy"}'):
        with pytest.raises(ValueError):
            Strategy.parse(bad)


def test_cached_answers_of_a_name_are_not_mixed_with_another_settings_answers(tmp_path):
    out = tmp_path / "answers" / "cards" / "gsm.jsonl"
    item = Item("gsm/t1-s0-0", "gsm", "heldout", ({"role": "user", "content": "1 + 1?"},), answer=2.0)
    cards = Strategy("cards", {"strategy": "cards"})
    out.parent.mkdir(parents=True)
    out.write_text('{"item": "gsm/t1-s0-0", "text": "2", "finish_reason": "stop", "tokens_emitted": 1, '
                   '"tokens_generated": 3, "ttft_s": 0.1, "wall_s": 0.2}\n')
    # the first run records its settings; cached answers are then served without the server (client None)
    got = asyncio.run(generate_all(None, "m", cards, (item,), 256, out, 1, "cards"))
    assert got[item.id].text == "2"
    assert asyncio.run(generate_all(None, "m", cards, (item,), 256, out, 1, "cards"))[item.id].tokens_generated == 3
    for other, max_tokens in ((Strategy("cards", {"strategy": "cards", "reward_end": 1.0}), 256), (cards, 512)):
        with pytest.raises(StaleAnswersError, match="another name"):
            asyncio.run(generate_all(None, "m", other, (item,), max_tokens, out, 1, "cards"))


def test_eval_plans_refuse_duplicate_strategies_and_unknown_sets(tmp_path):
    g = Strategy("greedy", {"strategy": "greedy"})
    with pytest.raises(ValueError, match="distinct"):
        EvalPlan("http://x", tmp_path, "m", strategies=(g, g))
    with pytest.raises(ValueError, match="unknown evaluation sets"):
        EvalPlan("http://x", tmp_path, "m", sets=("arena",))
    with pytest.raises(ValueError, match="limit"):
        EvalPlan("http://x", tmp_path, "m", limit=0)
    with pytest.raises(ValueError, match="unknown judge method 'ab'"):
        EvalPlan("http://x", tmp_path, "m", judge_method="ab")


def test_general_sets_are_not_judged_by_a_judge_that_failed_its_check(tmp_path):
    """Refused before any answer is asked for (the server here does not exist), unless asked to go on."""
    from sla_pipeline.eval.run import run

    plan = EvalPlan("http://127.0.0.1:9", tmp_path / "out", "m", sets=("alpaca", "gsm"), limit=1,
                    judge_check=tmp_path / "none.json")
    with pytest.raises(ValueError, match="no `sla judge-check` measurement in .*none.json.*--unvalidated-judge"):
        run(plan)
    assert not (tmp_path / "out" / "answers").exists()
    assert plan.judge_standing()["judge"] == "qwen2.5-coder-1.5b-instruct"


class LetterJudge(PairwiseJudge):
    """The pairwise judge's reading of the letters, crafted: `prefers(a, b)` says whether the answer shown as A
    is the better one; `bias` is added to A's log-probability (position bias)."""

    def __init__(self, prefers, bias: float = 0.0):
        self.prefers, self.bias, self.asked = prefers, bias, 0

    async def margin(self, instruction, a, b):
        self.asked += 1
        better_a = self.prefers(a, b)
        return math.log(0.7 if better_a else 0.3) + self.bias - math.log(0.3 if better_a else 0.7)


def _gen(item: str, text: str) -> Generation:
    return Generation(item, text, "stop", 3, 3, 0.1, 0.2)


def test_verdicts_against_greedy_swap_orders_and_tie_identical_or_biased_answers(tmp_path):
    items = tuple(Item(f"alpaca/{i}", "alpaca", "heldout", ({"role": "user", "content": f"q{i}"},)) for i in range(3))
    s = EvalSet("alpaca", "judged", items)
    mine = {"alpaca/0": _gen("alpaca/0", "good answer"), "alpaca/1": _gen("alpaca/1", "meh"),
            "alpaca/2": _gen("alpaca/2", "same")}
    greedy = {"alpaca/0": _gen("alpaca/0", "meh"), "alpaca/1": _gen("alpaca/1", "good answer"),
              "alpaca/2": _gen("alpaca/2", "same")}
    fair = LetterJudge(lambda a, b: "good" in a)
    got = asyncio.run(verdicts_against_baseline(fair, s, mine, greedy, tmp_path / "v.jsonl", 2))
    assert got == {"alpaca/0": "first", "alpaca/1": "second", "alpaca/2": "tie"}
    assert fair.asked == 4  # two differing items, both orders; identical answers are not asked
    # a judge that always says A (position bias beats its preference): the bias is removed, the preference stays
    biased = LetterJudge(lambda a, b: "good" in a, bias=5.0)
    got = asyncio.run(verdicts_against_baseline(biased, s, mine, greedy, tmp_path / "biased.jsonl", 2))
    assert got == {"alpaca/0": "first", "alpaca/1": "second", "alpaca/2": "tie"}
    only_a = LetterJudge(lambda a, b: True)  # no preference at all, only a position: a tie
    got = asyncio.run(verdicts_against_baseline(only_a, s, mine, greedy, tmp_path / "only_a.jsonl", 2))
    assert set(got.values()) == {"tie"}
    # cached: the same texts are not judged again (and `sla eval` starts no judge engine for them)
    assert uncached(comparisons(s, mine, greedy)[1], tmp_path / "v.jsonl") == 0
    assert uncached(comparisons(s, mine, greedy)[1], tmp_path / "other.jsonl") == 2
    again = asyncio.run(verdicts_against_baseline(fair, s, mine, greedy, tmp_path / "v.jsonl", 2))
    assert again["alpaca/0"] == "first" and fair.asked == 4
    with pytest.raises(ValueError, match="no judge"):
        asyncio.run(verdicts_against_baseline(None, s, mine, greedy, tmp_path / "none.jsonl", 2))


def test_report_table_and_plot(tmp_path):
    report = {
        "model": "m", "base_url": "http://x", "judge": "j", "baseline": "greedy", "max_tokens": 64, "limit": None,
        "sets": {"alpaca": {"kind": "judged", "items": 4}, "gsm": {"kind": "math", "items": 5}},
        "strategies": {
            "greedy": {"search": {}, "equity": {}, "gain": {},
                       "accuracy": {"gsm": {"correct": 1, "total": 5, "accuracy": 0.2, "ci95": [0.0, 0.6]}},
                       "cost": {"generated_per_emitted": 1.0, "mean_ttft_s": 0.1, "mean_wall_s": 1.0}},
            "sla": {"search": {}, "equity": {"alpaca": {"win": 2, "tie": 1, "loss": 1, "equity": 0.625,
                                                        "ci95": [0.25, 1.0]}},
                    "accuracy": {"gsm": {"correct": 3, "total": 5, "accuracy": 0.6, "ci95": [0.2, 1.0]}},
                    "gain": {"gsm": {"fixed": 2, "broke": 0, "gain": 0.4, "ci95": [0.0, 0.8], "p_value": 0.5}},
                    "cost": {"generated_per_emitted": 7.5, "mean_ttft_s": 2.0, "mean_wall_s": 9.0}},
        },
    }
    table = markdown(report)
    assert ("| `sla` | 62.5 % [25.0, 100.0] (2/1/1) | 60.0 % [20.0, 100.0] (3/5) "
            "| +40.0 pts [+0.0, +80.0] (2/0, p 0.50) | 7.50 | 2.00 | 9.00 |") in table
    assert "| `greedy` | baseline | 20.0 % [0.0, 60.0] (1/5) | baseline |" in table
    assert "gsm gain vs greedy (fixed/broke, p)" in table and "not evidence" not in table
    failed = {"report": "r.json", "judge": "j", "method": "pointwise", "pairs": 130, "agreement": 0.58, "passed": False}
    assert "**The equities above are not evidence**: judge 'j' (pointwise) failed `sla judge-check`: agreement " \
           "0.58 on 130 pairs" in markdown({**report, "judge_validation": failed})
    assert "not evidence" not in markdown({**report, "judge_validation": {**failed, "agreement": 0.8, "passed": True}})
    plot(report, tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
