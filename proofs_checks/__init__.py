"""The claim families of teachtheory: one module per family, named after its claims' id prefix.

Each module holds the sympy derivations and the numeric checks (the assumptions are checked in code); its
claims' metadata (source, LaTeX statement, assumptions, method, mutations) is data, in the claim table beside it
(``ssl.toml`` for ``ssl.py``, one ``[[claim]]`` table per claim), which the module registers on import with
``register_table(__name__, globals())`` (see :func:`teachtheory.claims.register_table`). The modules are found
through the ``teachtheory.claims`` entry-point group (see ``pyproject.toml``); the library itself never
imports this package.
"""
