"""Fixed-step integration of autonomous ODEs dy/dt = f(y), batched over whatever axes ``y`` carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["rk4"]

Y = TypeVar("Y")


def rk4(f: Callable[[Y], Y], y: Y, h: float, steps: int = 1) -> Y:
    """``steps`` classical Runge-Kutta steps of size ``h`` from ``y`` (any array type with + and scalar *).

    References:
        The classical fourth-order Runge-Kutta method (e.g. Hairer, Norsett and Wanner, "Solving Ordinary
        Differential Equations I", Springer 1993, Sec. II.1, Table 1.2).
    """
    for _ in range(steps):
        k1 = f(y)
        k2 = f(y + 0.5 * h * k1)
        k3 = f(y + 0.5 * h * k2)
        k4 = f(y + h * k3)
        y = y + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y
