"""sla_pipeline/analyses/fork_choice.py: greedy, the head's pick and a perfect chooser counted per problem."""

from __future__ import annotations

from sla_pipeline.analyses.fork_choice import choice_counts


def test_the_head_decides_only_where_answers_disagree_and_ties_go_to_greedy():
    problems = [
        [(True, None), (True, None)],  # all right: every pick is right, the head is not asked
        [(False, None), (False, None), (False, None)],  # all wrong
        [(False, 0.1), (True, 0.9), (False, 0.5)],  # the head picks the right fork
        [(True, 0.2), (False, 0.7)],  # the head overrules a right trunk
        [(True, 0.3), (False, 0.3)],  # a tie keeps the trunk
    ]
    assert choice_counts(problems) == {"problems": 5, "disagree": 3, "greedy": 3, "head": 3, "perfect": 4,
                                       "head_fixed": 1, "head_broke": 1}
    assert choice_counts([])["problems"] == 0
