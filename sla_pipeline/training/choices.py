"""How often a head makes a search's choice right, on the bank's answer pairs (bank/pairs.py): siblings as
SLA sees them (`lookahead` tokens past the fork) and best-of-N's candidates (whole answers); and best-of-N
itself replayed on each problem's answers (`best_of_n_replay`): what it would answer, against greedy.

A head scores the part of an answer a search sees by its read-out, and best-of-N ranks and votes, by the
server's own rule (sla_engine/search/ranking.py), so that a replay is what the server would do. A pair is
right when the right answer scores higher (a tie counts one half); intervals are bootstrapped over problems,
whose pairs are not independent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from sla_engine.search.ranking import majority, path_score, ranked, standing
from sla_pipeline.bank.pairs import AnswerPair
from sla_pipeline.bank.record import BankRecord, Kind
from sla_pipeline.eval.stats import PairedGain, bootstrap_ci
from sla_pipeline.training.value_data import scored_length

# score(answer, tokens seen) → the head's score of that answer's first `seen` tokens
Scorer = Callable[[BankRecord, int], float]


def seen_tokens(pair: AnswerPair, answer: BankRecord, lookahead: int | None, limit: int) -> int:
    """The tokens of `answer` a search sees: `lookahead` past where the pair parts (all, without one), never
    past its last scored token (a final EOS has no reward)."""
    last = scored_length(answer, limit)
    return last if lookahead is None else max(1, min(last, pair.parting + lookahead))


def reach(pairs: Sequence[tuple[Sequence[AnswerPair], int | None]], limit: int) -> dict[str, tuple[BankRecord, int]]:
    """Per answer id, the answer and how far any of the choices (pairs, each group with its look-ahead) reads it."""
    far: dict[str, tuple[BankRecord, int]] = {}
    for group, lookahead in pairs:
        for p in group:
            for a in (p.right, p.wrong):
                seen = seen_tokens(p, a, lookahead, limit)
                far[a.id] = (a, max(seen, far.get(a.id, (a, 0))[1]))
    return far


def seen_score(pair: AnswerPair, answer: BankRecord, score: Scorer, lookahead: int | None, limit: int) -> float:
    """The head's score of the part of `answer` a search sees (`seen_tokens`)."""
    return score(answer, seen_tokens(pair, answer, lookahead, limit))


def outcomes(pairs: Sequence[AnswerPair], score: Scorer, lookahead: int | None, limit: int) -> list[float]:
    result = []
    for p in pairs:
        right = seen_score(p, p.right, score, lookahead, limit)
        wrong = seen_score(p, p.wrong, score, lookahead, limit)
        result.append(1.0 if right > wrong else 0.5 if right == wrong else 0.0)
    return result


def choice_accuracy(pairs: Sequence[AnswerPair], score: Scorer, lookahead: int | None, limit: int) -> dict:
    """{"pairs", "problems", "accuracy", "ci95"} (accuracy and interval None without pairs)."""
    if not pairs:
        return {"pairs": 0, "problems": 0, "accuracy": None, "ci95": None}
    got = outcomes(pairs, score, lookahead, limit)
    items = [p.item for p in pairs]
    return {"pairs": len(pairs), "problems": len(set(items)), "accuracy": sum(got) / len(got),
            "ci95": bootstrap_ci(got, groups=items)}


def keep_trunk(answer: BankRecord, seen: int) -> float:
    """The chooser that always keeps greedy's side of a sibling pair (the trunk): the baseline a head's sibling
    accuracy must beat, since SLA with a head that never prefers a fork writes greedy's answer."""
    return float(answer.kind == "trunk")


def trunk_share(siblings: Sequence[AnswerPair], score: Scorer, lookahead: int, limit: int) -> float | None:
    """How often `score` keeps the trunk of a sibling pair, `lookahead` tokens past the fork (a tie counts one
    half): 1.0 for greedy, near the pairs' share of right trunks for a head that only learned greedy's odds."""
    got = [1.0 if delta < 0 else 0.5 if delta == 0 else 0.0
           for delta, _ in fork_deltas(siblings, score, lookahead, limit)]
    return sum(got) / len(got) if got else None


def fork_deltas(siblings: Sequence[AnswerPair], score: Scorer, lookahead: int, limit: int) -> list[tuple[float, bool]]:
    """Per sibling pair: the fork's score minus the trunk's, `lookahead` tokens past the fork, and whether the
    fork is the right one."""
    deltas = []
    for p in siblings:
        fork, trunk = (p.right, p.wrong) if p.wrong.kind == "trunk" else (p.wrong, p.right)
        deltas.append((seen_score(p, fork, score, lookahead, limit) - seen_score(p, trunk, score, lookahead, limit),
                       fork.correct))
    return deltas


def fork_over_greedy(siblings: Sequence[AnswerPair], score: Scorer, lookahead: int, limit: int,
                     quantiles: Sequence[float] = (0.0, 0.5, 0.75, 0.9)) -> dict:
    """SLA's choice at one fork with greedy as the default: the fork (the runner-up token, then greedy) is
    taken over the greedy trunk only when it scores more than `margin` above it, `lookahead` tokens past the
    fork. Per margin — the `quantile` of |score difference| over the pairs, so 0 is the paper's rule — how
    often the fork is taken and whether that fixed or broke the answer (every pair's outcomes differ).

    {"pairs", "margins": [{"quantile", "margin", "taken", "fixed", "broke", "changed_right"}]}."""
    deltas = fork_deltas(siblings, score, lookahead, limit)
    spread = sorted(abs(d) for d, _ in deltas)
    rows = []
    for q in quantiles:
        margin = spread[min(len(spread) - 1, int(q * len(spread)))] if q > 0 and spread else 0.0
        taken = [right for d, right in deltas if d > margin]
        fixed = sum(taken)
        rows.append({"quantile": q, "margin": margin, "taken": len(taken), "fixed": fixed,
                     "broke": len(taken) - fixed, "changed_right": fixed / len(taken) if taken else None})
    return {"pairs": len(deltas), "margins": rows}


def read(rewards: Sequence[float], seen: int, readout: str) -> float:
    """A path's score from its per-position rewards, its first `seen` read (ranking.py's `path_score`)."""
    return path_score(rewards, readout, seen)


def best_of_n_order(candidates: list[BankRecord], score: Scorer, limit: int,
                    prefer_finished: bool) -> list[BankRecord]:
    """Best-of-N's order of whole answers (ranking.py's `ranked`): the head's score over the whole answer, the
    first drawn among equals; with `prefer_finished`, every answer that ended at EOS first."""
    return ranked(candidates, lambda r: standing(score(r, scored_length(r, limit)), r.finish_reason, prefer_finished))


def vote(order: list[BankRecord]) -> BankRecord:
    """The server's `select: "vote"` over answers already in best-of-N's order: the majority of their final
    numbers (GSM's `given`), the first in that order breaking ties."""
    return majority(order, [r.given for r in order])


def against_greedy(correct: list[bool], greedy: list[bool]) -> dict:
    gain = PairedGain.of(correct, greedy)
    changed = gain.fixed + gain.broke
    return {"accuracy": sum(correct) / len(correct), "fixed": gain.fixed, "broke": gain.broke, "gain": gain.gain,
            "gain_ci95": list(gain.ci95), "p_value": gain.p_value,
            "changed_right": gain.fixed / changed if changed else None}


def greedy_and(records: Iterable[BankRecord], kind: Kind = "sample") -> list[tuple[BankRecord, list[BankRecord]]]:
    """Best-of-N's problems among the records: (greedy's answer, the answers of `kind` — samples, or forks — in
    bank order) per problem with one trunk and some of them (elsewhere there is no greedy answer to compare
    with, or nothing to choose)."""
    by_item: dict[str, list[BankRecord]] = defaultdict(list)
    for r in records:
        if r.kind in ("trunk", kind):
            by_item[r.item].append(r)
    found = []
    for answers in by_item.values():
        trunks = [r for r in answers if r.kind == "trunk"]
        others = [r for r in answers if r.kind == kind]
        if len(trunks) == 1 and others:
            found.append((trunks[0], others))
    return found


def best_of_n_replay(records: Iterable[BankRecord], score: Scorer, limit: int, prefer_finished: bool = True,
                     kind: Kind = "sample") -> dict:
    """Best-of-N with `greedy_first` replayed on every problem with a trunk (the greedy answer, drawn first) and
    samples, by the server's rule (`ranked`), and beside it its `select: "vote"` over the same answers (the
    server's `majority` of their final numbers, the head only breaking ties). Scored only where the answers'
    outcomes differ (elsewhere every choice has greedy's outcome). With `kind="fork"` the candidates are the
    trunk and its forks instead: a look-ahead to the end of the answer at the trunk's uncertain points.

    {"problems", "candidates" (most per problem), "prefer_finished", "greedy", "oracle" (accuracies), "pick"
    and "vote": {"accuracy", "fixed", "broke", "gain", "gain_ci95", "p_value" (against greedy, paired over
    problems), "changed_right" (fixed / (fixed + broke); None if no outcome changed)}}; only "problems" (0)
    without a problem to replay."""
    greedy, picked, voted, oracle, most = [], [], [], [], 0
    for trunk, others in greedy_and(records, kind):
        candidates = [trunk, *others]
        most = max(most, len(candidates))
        outcomes = {r.correct for r in candidates}
        order = candidates if len(outcomes) == 1 else best_of_n_order(candidates, score, limit, prefer_finished)
        greedy.append(candidates[0].correct)
        picked.append(order[0].correct)
        voted.append(vote(order).correct)
        oracle.append(True in outcomes)
    if not greedy:
        return {"problems": 0}
    return {"problems": len(greedy), "candidates": most, "prefer_finished": prefer_finished,
            "greedy": sum(greedy) / len(greedy), "oracle": sum(oracle) / len(oracle),
            "pick": against_greedy(picked, greedy), "vote": against_greedy(voted, greedy)}
