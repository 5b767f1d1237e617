"""Imports every claim module; each registers its claims on import (one module per claim family)."""
# isort: skip_file  (the import order is the order of `teachtheory check`)

from . import last  # noqa: F401  label synthesis teaching (seed 001)
from . import dht  # noqa: F401  data hallucination teaching (seed 000)
from . import theorems  # noqa: F401  exponential / super-exponential teachability (seed 001 Thm 1-3, seed 000 Thm 1)
from . import relu  # noqa: F401  teacher-student ReLU networks, student specialization (seed 004)
from . import committee  # noqa: F401  soft committee machines, Saad-Solla ODEs (seed 004)
from . import ssl  # noqa: F401  self-supervised learning, covariance operator (seed 004)
from . import l2t  # noqa: F401  alternating gradient descent at a saddle, reverse-mode hypergradients (seed 002)
