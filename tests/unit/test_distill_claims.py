"""The distill.* claims: registered with sources, established quick verdicts, and power checks that fail."""

import pytest
import torch

import proofs_checks.distill  # noqa: F401 - registers the family (entry points may predate it)
from teachtheory.claims import CLAIMS, CheckContext
from teachtheory.distill.kernels import relu_kernels
from teachtheory.references import cite

EXPECTED = {
    "distill.kernels": "holds",
    "distill.label-solve": "holds",
    "distill.kip-epsilon": "holds",
    "distill.dc-distance": "holds",
    "distill.beats-random": "holds",
    # at 8x8 the class mean (k-means with one centroid) is as good as any learned image at ipc 1
    "distill.beats-kmeans": "fails",
}
_cache: dict = {}


def verdict(cid: str, power: bool = False):
    if (cid, power) not in _cache:
        _cache[cid, power] = CLAIMS[cid].run(CheckContext(scale="quick", seed=0, power=power))
    return _cache[cid, power]


def test_claims_are_registered_with_source_statement_assumptions_and_method():
    ids = {cid for cid in CLAIMS if cid.startswith("distill.")}
    assert set(EXPECTED) <= ids  # the bilevel family's claims are tested in test_distill_bilevel.py
    for cid in EXPECTED:
        claim = CLAIMS[cid]
        assert claim.statement and claim.assumptions and claim.method
        assert any(cite(key) in claim.source for key in ("kip", "dc", "dm", "mtt"))
    for cid in ("distill.kernels", "distill.kip-epsilon", "distill.beats-random", "distill.beats-kmeans"):
        assert CLAIMS[cid].statistical


@pytest.mark.parametrize("cid", list(EXPECTED))
def test_quick_verdict(cid):
    v = verdict(cid)
    assert v.verdict == EXPECTED[cid], (cid, v.message, v.details.get("traceback"))
    assert v.statistic is not None and v.tolerance is not None and v.tolerance_rule


@pytest.mark.parametrize("cid", list(EXPECTED))
def test_power_check_fails(cid):
    v = verdict(cid, power=True)
    assert v.verdict == "fails", (cid, v.verdict, v.message, v.details.get("traceback"))


def test_closed_form_kernels_at_depth_zero_and_one_by_hand():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    nngp, ntk = relu_kernels(x, depth=0, sigma_w2=2.0, sigma_b2=0.0)
    assert torch.allclose(nngp, x @ x.T) and torch.allclose(ntk, nngp)
    # orthogonal inputs: theta = pi/2, so E[relu relu] = sqrt(k11 k22)/(2 pi) and E[relu' relu'] = 1/4
    nngp, ntk = relu_kernels(x, depth=1, sigma_w2=2.0, sigma_b2=0.0)
    k11, k22 = 1.0, 4.0
    assert torch.allclose(nngp, torch.tensor([[k11, 2 * (k11 * k22) ** 0.5 / (2 * torch.pi)],
                                              [2 * 1.0 / torch.pi, k22]],
                                             dtype=torch.float64), atol=1e-6)
    assert torch.allclose(ntk[0, 1], nngp[0, 1] + 2 * 0.25 * 0.0) and torch.allclose(ntk[0, 0], 2 * nngp[0, 0])
