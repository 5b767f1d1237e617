"""Claim of the ordering DHT's Fig. 3 shows: greedy DHT, with and without label synthesis, converges fastest.

Checked under the authors' protocol (``qiu2023``: a two-output softmax learner without bias, lr 1e-3, w* trained
by SGD, the global DHT box, labels y >= 0 with ||y||_2 <= 2) on the digits-3/5 panel (the 8x8 stand-in for MNIST),
in the authors' metric ||W/||W||_F - W*/||W*||_F||_2^2. Paired over runs (same w0 and streams per run).

References:
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Sec. 5.1, Fig. 3.
"""

from __future__ import annotations

import numpy as np
import torch

from teachtheory.claims import CheckContext, Verdict, register_table

from ..last.figures import final_values, ordering_verdict


def _direction_gap(final_w: np.ndarray, setup) -> np.ndarray:
    from simulations.classification import direction_gap

    return direction_gap(torch.as_tensor(final_w), setup.problem.w_star.cpu()).numpy()


def check_fig3(ctx: CheckContext) -> Verdict:
    """DHT Fig. 3 (digits 3/5, qiu2023): DHT beats SGD and IMT; DHT + label beats SGD + label and IMT + label."""
    from simulations.classification import build_digits35_qiu2023

    horizon = ctx.pick(100, 300)
    setup = build_digits35_qiu2023("small", ctx.pick(12, 30), horizon, ctx.seed, "cpu")
    values = ctx.memo(("fig3", horizon), lambda: final_values(setup, [label for label, _ in setup.teachers], ctx.seed,
                                                              metric=_direction_gap))
    better = [("DHT", "SGD"), ("DHT", "IMT"), ("DHT + label", "SGD + label"), ("DHT + label", "IMT + label")]
    return ordering_verdict(ctx, values, better, horizon=horizon, metric="||W/|W| - W*/|W*|||_2^2",
                            protocol="qiu2023, digits 3/5")


register_table(__name__, globals())
