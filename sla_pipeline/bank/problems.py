"""Which problems the bank draws answers for, per domain, and which it must never touch.

GSM:
- train: GSM-symbolic variants of the train-side templates (data/split.py), seed 0;
- validation: variants of the held-out templates drawn with `VALIDATION_SEED`, leaving out every question of
  the test set, so that heads, losses, read-outs and settings are chosen here;
- test: `sla eval`'s held-out GSM set (seed `TEST_SEED`, the first `TEST_SIZE`), only ever reported on.

MBPP: its train and validation sides (domains/mbpp.py); the test side is only ever reported on.
IFEval: the training prompts made like IFEval's (domains/if_train.py) and IFEval's validation side; the test
side is only ever reported on.

Each domain's collections are `<domain>-samples`, `<domain>-forks` and `<domain>-rollouts`.
"""

from __future__ import annotations

from sla_pipeline.data.sources import Item, gsm_items, gsm_template_ids
from sla_pipeline.data.split import split_of
from sla_pipeline.domains import DOMAINS
from sla_pipeline.domains.if_train import if_train_items
from sla_pipeline.domains.ifeval import ifeval_items
from sla_pipeline.domains.mbpp import mbpp_items

VALIDATION_SEED = 1
TEST_SEED, TEST_SIZE = 0, 200
SAMPLES, FORKS, ROLLOUTS = "gsm-samples", "gsm-forks", "gsm-rollouts"  # the bank's GSM collections
MAX_LIST = 4000  # the most problems of a role's list that bank ids are looked up in
JOBS = ("validation-forks", "validation-samples", "train-samples", "train-forks",  # `sla bank grow`'s, in turn
        "validation-rollouts", "train-rollouts")


def collections(domain: str) -> tuple[str, str, str]:
    """The domain's samples, forks and rollouts collections."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}")
    return f"{domain}-samples", f"{domain}-forks", f"{domain}-rollouts"


def train_items(count: int, domain: str = "gsm") -> list[Item]:
    """The first `count` train-side problems of a domain (MBPP has ~238)."""
    if domain == "gsm":
        return gsm_items("train", count)
    if domain == "mbpp":
        return mbpp_items("train")[:count]
    return if_train_items(count)


def test_items() -> list[Item]:
    return gsm_items("heldout", TEST_SIZE, TEST_SEED)


def validation_items(count: int, domain: str = "gsm") -> list[Item]:
    """GSM: `count` held-out-template problems drawn with VALIDATION_SEED, none of them a test-set question;
    MBPP and IFEval: the first `count` of their validation side."""
    if domain != "gsm":
        return (mbpp_items if domain == "mbpp" else ifeval_items)("validation")[:count]
    test = {it.messages[-1]["content"] for it in test_items()}
    ask = count
    while True:
        fresh = [it for it in gsm_items("heldout", ask, VALIDATION_SEED) if it.messages[-1]["content"] not in test]
        if len(fresh) >= count:
            return fresh[:count]
        if ask > 4 * count + 100:
            raise ValueError(f"only {len(fresh)} validation problems differ from the test set")
        ask += count - len(fresh) + 10


def list_length(ids: set[str], split: str) -> int:
    """How much of a role's list holds `ids`: the list goes round robin over the split's templates, so variant n
    of every template is among its first (n + 1) · templates problems, whatever order the bank drew them in."""
    templates = sum(split_of("gsm", str(t)) == split for t in gsm_template_ids())
    return (1 + max(int(i.rsplit("-", 1)[1]) for i in ids)) * templates


def items_by_id(ids: set[str]) -> dict[str, Item]:
    """The problems behind bank records' item ids, of every domain."""
    found: dict[str, Item] = {}
    others = {i for i in ids if not i.startswith("gsm/")}
    if others:
        known = [*mbpp_items(), *ifeval_items()]
        if any(i.startswith("iftrain/") for i in others):
            known += if_train_items()
        found |= {it.id: it for it in known if it.id in others}
    ids = ids - others
    train = {i for i in ids if f"-s{VALIDATION_SEED}-" not in i}
    for wanted, split, draw in ((train, "train", train_items), (ids - train, "heldout", validation_items)):
        if wanted and (length := list_length(wanted, split)) <= MAX_LIST:
            found |= {it.id: it for it in draw(length)}
    if missing := (ids | others) - found.keys():
        raise ValueError(f"{len(missing)} bank items are not among the known problems (for GSM: not among the "
                         f"first {MAX_LIST} problems of their list), e.g. {min(missing)}")
    return {i: found[i] for i in ids | others}
