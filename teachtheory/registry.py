"""Plug-in loading through entry points: claim families and simulations register themselves on import.

The library never imports ``proofs_checks/`` or ``simulations/`` itself: it asks
:mod:`importlib.metadata` for the modules declared under an entry-point group and imports them.
A user's own package adds claims or simulations by declaring entry points in the same groups.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

__all__ = ["load_entry_points"]

_LOADED: set[str] = set()


def load_entry_points(group: str) -> list[str]:
    """Import every module declared under the entry-point ``group`` (once per process); return their names.

    Raises:
        RuntimeError: when no module is declared under the group (the package is not installed), or one
            fails to import (the message names it).
    """
    found = sorted(entry_points(group=group), key=lambda ep: ep.name)
    if not found:
        raise RuntimeError(f"no entry points in group {group!r}: install teachtheory (pip install -e .) so that "
                           "its claim families and simulations are registered")
    names = []
    for ep in found:
        names.append(ep.value)
        if ep.value in _LOADED:
            continue
        try:
            importlib.import_module(ep.value)
        except Exception as exc:  # a broken plug-in must say which one it is
            raise RuntimeError(f"entry point {ep.name!r} of group {group!r} ({ep.value}) failed to import: "
                               f"{type(exc).__name__}: {exc}") from exc
        _LOADED.add(ep.value)
    return names
