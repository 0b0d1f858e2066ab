"""Admission control on its own: both caps hold, tickets give back exactly what they took."""

from __future__ import annotations

import pytest

from server.admission import Admission, Overloaded


def test_the_branch_cap_refuses_and_releases():
    admission = Admission(max_requests=100, max_branches=10)
    a = admission.admit(8)
    with pytest.raises(Overloaded, match="cap of 10 live search branches") as refused:
        admission.admit(4)
    assert refused.value.reason == "branches"
    b = admission.admit(2)
    a.release()
    a.release()  # idempotent
    assert (admission.requests, admission.branches) == (1, 2)
    b.release()
    assert (admission.requests, admission.branches) == (0, 0)


def test_the_request_cap_refuses_before_the_branch_cap():
    admission = Admission(max_requests=2, max_branches=100)
    tickets = [admission.admit(1), admission.admit(1)]
    with pytest.raises(Overloaded, match="2 concurrent requests") as refused:
        admission.admit(1)
    assert refused.value.reason == "requests"
    tickets[0].release()
    admission.admit(1)
    assert admission.requests == 2 and admission.branches == 2


@pytest.mark.parametrize("caps", [(0, 10), (10, 0)])
def test_caps_must_be_positive(caps):
    with pytest.raises(ValueError):
        Admission(*caps)


def test_rejections_are_exported_at_zero_for_every_cap_before_the_first():
    """A dashboard panel of 429s by cap has a series from the start (deploy/grafana), not "no data"."""
    from prometheus_client import generate_latest

    from server.admission import CAPS
    from server.metrics import ServerMetrics

    text = generate_latest(ServerMetrics().registry).decode()
    for cap in CAPS:
        assert f'sla:requests_rejected_total{{cap="{cap}"}} 0.0' in text
    with pytest.raises(Overloaded) as refused:
        Admission(max_requests=1, max_branches=10).admit(11)
    assert refused.value.reason in CAPS
