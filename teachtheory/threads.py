"""torch's intra-op thread count, set for a block of code and restored afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["intra_op_threads"]


@contextlib.contextmanager
def intra_op_threads(threads: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (restored on exit); None leaves it alone.

    Claim checks and small simulations loop over many tiny tensors. There an OpenMP team of 2+
    threads only waits for its workers at every op, which on a busy machine was measured at
    10-25 ms per op instead of 0.1 ms, so such loops run single-threaded.
    """
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
