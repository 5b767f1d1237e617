"""Claims of label synthesis teaching (LAST): the greedy label objective, its constraints and views
(:mod:`.labels`), the teachability theorems 1-3 (:mod:`.theorems`) and the orderings of Figs. 7, 8
and 10 under the paper's protocol (:mod:`.figures`).

References:
    W. Liu, Z. Liu, H. Wang, L. Paull, B. Schölkopf, A. Weller, "Iterative Teaching by Label Synthesis",
    NeurIPS 2021.
"""

from . import figures, labels, objectives, parameterized, rates, theorems  # noqa: F401  (each registers its claims on import)
