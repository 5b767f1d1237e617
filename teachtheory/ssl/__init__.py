"""Self-supervised learning in the teacher-student spirit: generative models with a latent z0,
deep ReLU networks exposing their connections K_l, and SimCLR/BYOL training batched over runs.

References:
    Tian, Yu, Chen, Ganguli, "Understanding Self-Supervised Learning with Dual Deep Networks", 2020;
    Tian's teacher-student talk.
"""

from .models import HLTM, MAX_ENUMERATION, Blocks, CircularTranslation, Enumeration
from .networks import ReLUNet, population_operators

__all__ = ["HLTM", "MAX_ENUMERATION", "Blocks", "CircularTranslation", "Enumeration", "ReLUNet", "population_operators"]
