"""Claims of data hallucination teaching (DHT): the greedy policy and the scaling map (:mod:`.greedy`, with
DHT Thm 1), the learned data-transformation policies (:mod:`.policies`) and the learned Mixup teacher
(:mod:`.mixup`), performative and privacy-preserving teaching (:mod:`.performative`).

References:
    Z. Qiu, W. Liu, T. Z. Xiao, Z. Liu, U. Bhatt, Y. Luo, A. Weller, B. Schölkopf, "Iterative Teaching by Data
    Hallucination", AISTATS 2023.
"""

from . import greedy, mixup, performative, policies  # noqa: F401  (each registers its claims on import)
