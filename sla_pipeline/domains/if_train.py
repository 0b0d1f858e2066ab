"""Instruction-following training prompts, made like IFEval's and never one of its 541 (docs/domains.md).

Base prompts are the 999 of `llamafactory==0.9.5`'s `data/alpaca_en_demo.json` (the instruction, and its
input after a blank line where it has one), less any whose text is an IFEval prompt or an AlpacaEval
instruction. To each, one to three IFEval instructions are attached, each built by its own class with random
arguments (`build_description()` with none given), never two that IFEval's registry says conflict; the
descriptions follow the base prompt, and a "repeat the request" instruction, when drawn, comes last and
repeats everything before it. Everything is drawn from `random.Random(f"iftrain:{index}")`, so prompt
`iftrain/<index>` is the same on every machine. The answers are checked by the same checkers as IFEval's
(ifeval.py `follows`).
"""

from __future__ import annotations

import json
import random
from functools import cache

from sla_pipeline.data.packages import LLAMAFACTORY, read_member
from sla_pipeline.data.sources import Item, alpaca_items, user
from sla_pipeline.domains.ifeval import checkers, ifeval_items

REPEAT = "combination:repeat_prompt"


@cache
def base_prompts() -> tuple[str, ...]:
    rows = json.loads(read_member(LLAMAFACTORY, "data/alpaca_en_demo.json"))
    texts = [f"{r['instruction']}\n\n{r['input']}" if r["input"] else r["instruction"] for r in rows]
    seen = {it.messages[-1]["content"].strip() for it in [*ifeval_items(), *alpaca_items()]}
    return tuple(t for t in texts if t.strip() not in seen)


def _build(instruction_id: str, rng: random.Random, **given) -> tuple[str, dict]:
    """One instruction's description and the arguments its checker needs, drawn from `rng` (the classes
    draw from the `random` module: it is seeded from `rng` and restored after)."""
    state = random.getstate()
    random.seed(rng.getrandbits(64))
    try:
        instruction = checkers().INSTRUCTION_DICT[instruction_id](instruction_id)
        description = instruction.build_description(**given)
        args = instruction.get_instruction_args() or {}
    finally:
        random.setstate(state)
    return description, {k: v for k, v in args.items() if v is not None}


def choose_instructions(rng: random.Random) -> list[str]:
    """One to three instruction ids, no two in conflict (IFEval's INSTRUCTION_CONFLICTS), the repeat
    instruction last."""
    module = checkers()
    conflicts = module.instructions_registry.INSTRUCTION_CONFLICTS
    want = rng.choice((1, 2, 3))
    ids = sorted(module.INSTRUCTION_DICT)
    rng.shuffle(ids)
    chosen: list[str] = []
    for candidate in ids:
        if len(chosen) == want:
            break
        if all(candidate not in conflicts.get(c, ()) and c not in conflicts.get(candidate, ()) for c in chosen):
            chosen.append(candidate)
    return sorted(chosen, key=lambda i: i == REPEAT)


def if_train_item(index: int, base: str) -> Item:
    rng = random.Random(f"iftrain:{index}")
    chosen = choose_instructions(rng)
    text, kwargs = base, []
    for instruction_id in chosen:
        if instruction_id == REPEAT:
            description, args = _build(instruction_id, rng, prompt_to_repeat=text)
            text = f"{text}\n{description}"
        else:
            description, args = _build(instruction_id, rng)
            text = f"{text} {description}"
        kwargs.append(args)
    return Item(f"iftrain/{index}", "iftrain", "train", (user(text),),
                meta={"instructions": tuple(chosen), "kwargs": tuple(kwargs)})


def if_train_items(count: int | None = None) -> list[Item]:
    """The first `count` training prompts (None: all ~990)."""
    bases = base_prompts()[:count]
    return [if_train_item(i, base) for i, base in enumerate(bases)]
