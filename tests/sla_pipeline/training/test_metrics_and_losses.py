"""How good a token-level reward is, and the losses that train it."""

from __future__ import annotations

import math

import pytest
import torch

from sla_pipeline.training.losses import pair_loss
from sla_pipeline.training.metrics import autrc, parting, prefix_accuracy, trc_curve


def test_token_reward_curve_and_autrc():
    # chosen is better only from its second half on: early prefixes cannot tell, full ones can
    chosen = [[0.0, 0.0, 1.0, 1.0]] * 4
    rejected = [[0.0, 0.0, -1.0, -1.0]] * 4
    curve = trc_curve(chosen, rejected)
    assert curve == {0.25: 0.5, 0.5: 0.5, 0.75: 1.0, 1.0: 1.0}
    assert math.isclose(autrc({f: 1.0 for f in curve}), 0.9375)  # perfect from the first quarter
    assert math.isclose(autrc({f: 0.5 for f in curve}), 0.5)  # chance
    assert 0.5 < autrc(curve) < 0.9375
    assert prefix_accuracy([[1.0]], [[1.0]], 1.0) == 0.5  # a tie counts one half


def test_siblings_part_where_their_tokens_first_differ():
    assert parting([5, 6, 7, 8], [5, 6, 9]) == 2 and parting([1], [2]) == 0 and parting([1, 2], [1, 2, 3]) == 2


@pytest.mark.parametrize("kind", ["seqwise_bt", "tokenwise_bt", "cross_entropy"])
def test_losses_fall_as_chosen_rewards_rise_above_rejected(kind):
    mc = torch.tensor([[1.0, 1.0, 0.0]])
    mr = torch.tensor([[1.0, 1.0, 1.0]])
    rc = torch.zeros(1, 3, requires_grad=True)
    rr = torch.zeros(1, 3, requires_grad=True)
    pair_loss(kind, rc, mc, rr, mr).backward()
    assert (rc.grad[0, :2] < 0).all() and rc.grad[0, 2] == 0  # raise chosen tokens; padding untouched
    assert (rr.grad[0] >= 0).all() and rr.grad.sum() > 0  # lower rejected tokens
    better = pair_loss(kind, torch.full((1, 3), 2.0), mc, torch.full((1, 3), -2.0), mr)
    assert better < pair_loss(kind, torch.zeros(1, 3), mc, torch.zeros(1, 3), mr)
