"""Feasible sets for synthesized labels, with exact Euclidean projections.

In label synthesis teaching the teacher first computes an unconstrained greedy
label ``y*``. For least-squares and softmax cross-entropy learners the greedy
objective is an isotropic quadratic in the label, so the best *constrained*
label is the Euclidean projection of ``y*`` onto the feasible set. This package
provides those sets and projections, batched over any leading dimensions
(labels have shape ``[..., K]``; a scalar label is ``[..., 1]``).

Modules:

* ``base``: :class:`LabelSet`, the shared behaviour (membership by distance to the
  projection, descriptions, spec strings, interval bounds), and :func:`interval`.
* ``sets``: :class:`Unconstrained`, :class:`Ball` (around the learner's prediction,
  the true label or the origin, in the 1-, 2- or inf-norm), :class:`Simplex`,
  :class:`NonNegative`, :class:`Box`, the discrete :class:`OneHot` and :class:`Signs`.
* ``projections``: the pure projection functions behind them.
* ``exact``, ``intersection``: :class:`Intersection` of any of these (exact where
  possible) and :func:`dykstra`.
* ``parse``: :func:`parse_label_set`, the compact string form used by the CLI and
  the configs; every set's :meth:`LabelSet.spec` writes it back.

References:
    LAST: Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021,
    Sec. 3.2. DHT: Qiu et al., AISTATS 2023, Sec. 5.1 (``y >= 0`` and
    ``||y||_2 <= 2``). Duchi, Shalev-Shwartz, Singer & Chandra, "Efficient
    projections onto the l1-ball for learning in high dimensions", ICML 2008
    (simplex and l1 ball). Boyle & Dykstra, "A method for finding projections
    onto the intersection of convex sets in Hilbert spaces", 1986.
"""

from __future__ import annotations

from .base import LabelSet, interval
from .intersection import Intersection, dykstra
from .parse import ACCEPTED_FORMS, parse_label_set
from .projections import (
    EmptySetError,
    project_ball,
    project_box,
    project_box_l1_ball,
    project_capped_simplex,
    project_simplex,
    project_simplex_l1_ball,
)
from .sets import Ball, Box, NonNegative, OneHot, Signs, Simplex, Unconstrained

__all__ = [
    "ACCEPTED_FORMS",
    "Ball",
    "Box",
    "EmptySetError",
    "Intersection",
    "LabelSet",
    "NonNegative",
    "OneHot",
    "Signs",
    "Simplex",
    "Unconstrained",
    "dykstra",
    "interval",
    "parse_label_set",
    "project_ball",
    "project_box",
    "project_box_l1_ball",
    "project_capped_simplex",
    "project_simplex",
    "project_simplex_l1_ball",
]
