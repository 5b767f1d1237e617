import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=30, deadline=None)
settings.register_profile(
    "ci", max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# one thread per pytest-xdist worker (the workers already fill the cores; a 2-thread OpenMP team on tiny
# tensors only waits), up to two in a single process
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1)))


def _assert_quick_verdict(verdict, expected: str) -> None:
    """A claim's quick-scale verdict is the expected one, with statistic, tolerance and rule; a printed-form-wrong
    verdict names its corrected form and that form holds."""
    assert verdict.verdict == expected, (verdict.claim_id, verdict.message, verdict.details.get("traceback"))
    assert verdict.statistic is not None and verdict.tolerance is not None and verdict.tolerance_rule
    if verdict.verdict == "printed-form-wrong":
        assert verdict.details["corrected_form"] and verdict.details["corrected_holds"] is True


@pytest.fixture
def assert_quick_verdict():
    """The shared assertion of the claim-family tests (see :func:`_assert_quick_verdict`)."""
    return _assert_quick_verdict
