"""The experiments of teachtheory: one module per paper figure or table, at scale ``small`` and ``full``.

Each module declares its configurations and registers its simulations on import; they are found
through the ``teachtheory.simulations`` entry-point group (see ``pyproject.toml``). The library itself
never imports this package.
"""
