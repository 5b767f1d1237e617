"""simulations/: one module per experiment, each registering what it declares; pyproject's entry points name them all.

The modules are imported directly (not through the installed entry points), so these tests also hold in a
checkout whose installed metadata predates a new module.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import simulations
from teachtheory.simulation import SCALES, SIMULATIONS

# module -> the simulations it registers
EXPECTED = {
    "lsr": {"lsr"},
    "classification": {"moons", "digits35"},
    "mlp_digits35": {"mlp-digits35"},
    "specialization": {"specialization", "specialization-deep"},
    "relu_dynamics": {"relu-dynamics"},
    "committee": {"committee"},
    "ssl_hltm": {"ssl-hltm"},
    "l2t_dln": {"l2t-dln"},
    "agd_saddle": {"agd-saddle"},
    "adversarial": {"adversarial-ts"},
    "learned_teachers": {"last-parameterized", "blast", "dht-transform", "dht-mixup", "dht-generative"},
    "distill_table": {"distill-table"},
    "distill_bilevel": {"distill-bilevel"},
    "dht_learned": {"dht-performative", "dht-privacy"},
}
SHARED = {"common"}  # helpers of the runners; registers nothing


def _registered_by_module() -> dict[str, set[str]]:
    for name in EXPECTED:
        importlib.import_module(f"simulations.{name}")
    found: dict[str, set[str]] = {}
    for sim in SIMULATIONS.values():
        module = (sim.runner or sim.build).__module__
        if module.startswith("simulations."):
            found.setdefault(module.removeprefix("simulations."), set()).add(sim.name)
    return found


def test_every_module_is_an_experiment_or_the_shared_helpers():
    modules = {m.name for m in pkgutil.iter_modules(simulations.__path__)}
    assert modules == set(EXPECTED) | SHARED


def test_each_module_registers_its_simulations():
    assert _registered_by_module() == EXPECTED


@pytest.mark.parametrize("name", sorted(set().union(*EXPECTED.values())))
def test_each_simulation_declares_both_scales(name):
    _registered_by_module()
    sim = SIMULATIONS[name]
    assert set(sim.defaults) == set(SCALES)
    for scale in SCALES:
        runs, steps = sim.defaults[scale]["runs"], sim.defaults[scale]["steps"]
        assert isinstance(runs, int) and runs >= 1 and isinstance(steps, int) and steps >= 1
    assert sim.description and sim.reference
    assert (sim.build is None) != (sim.runner is None)


def test_pyproject_entry_points_name_every_simulation_module():
    text = (Path(simulations.__file__).parents[1] / "pyproject.toml").read_text()
    section = text.split('[project.entry-points."teachtheory.simulations"]', 1)[1].split("\n[", 1)[0]
    entries = dict(re.findall(r'^(\w+)\s*=\s*"simulations\.(\w+)"', section, flags=re.MULTILINE))
    assert set(entries.values()) == set(EXPECTED)
    assert all(key == value for key, value in entries.items())  # entry-point name = module name


def test_every_simulation_names_its_protocol():
    """What `teachtheory list` shows as "reproduces" says whose setup runs: the paper's, the authors' or ours."""
    for names in _registered_by_module().values():
        for name in names:
            assert "protocol" in SIMULATIONS[name].reproduces, name
