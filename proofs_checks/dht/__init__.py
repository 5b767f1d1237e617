"""Claims of data hallucination teaching (DHT): the greedy policy and the scaling map (:mod:`.greedy`, with
DHT Thm 1; :mod:`.scaling`), the learned data-transformation policies (:mod:`.policies`), the learned Mixup teacher
(:mod:`.mixup`), performative and privacy-preserving teaching (:mod:`.performative`) and the ordering of Fig. 3
under the authors' protocol (:mod:`.figures`).

References:
    Z. Qiu, W. Liu, T. Z. Xiao, Z. Liu, U. Bhatt, Y. Luo, A. Weller, B. Schölkopf, "Iterative Teaching by Data
    Hallucination", AISTATS 2023.
"""

from . import figures, greedy, mixup, performative, policies, scaling  # noqa: F401  (each registers its claims on import)
