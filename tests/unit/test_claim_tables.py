"""The claim tables of proofs_checks/ and their loader, teachtheory.claims.register_table."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

import proofs_checks
from teachtheory import claims as claims_module
from teachtheory.claims import ORDERING_REASON, SENSITIVITY_TARGET, CheckContext, Verdict, load_claims, register_table
from teachtheory.references import cite

ROOT = Path(proofs_checks.__file__).parent
TABLES = sorted(ROOT.rglob("*.toml"))


def _module(table: Path) -> str:
    """The family module a table belongs to: proofs_checks/last/labels.toml -> proofs_checks.last.labels."""
    return ".".join(table.relative_to(ROOT.parent).with_suffix("").parts)


def _check(ctx: CheckContext) -> Verdict:
    return Verdict("", "holds")


NAMESPACE = {"check_it": _check, "not_a_function": 3}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "family.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def registry(monkeypatch):
    """An empty claim registry for the duration of a test (the real one is left as it was)."""
    fresh: dict = {}
    monkeypatch.setattr(claims_module, "CLAIMS", fresh)
    return fresh


def test_every_family_table_loads_and_declares_its_module_claims():
    registered = load_claims()
    assert len(TABLES) >= 20
    declared = []
    for table in TABLES:
        module = _module(table)
        assert (ROOT.parent / (module.replace(".", "/") + ".py")).is_file(), f"{table} has no module beside it"
        entries = tomllib.loads(table.read_text(encoding="utf-8"))["claim"]
        for entry in entries:
            claim = registered[entry["id"]]
            assert claim.check.__module__ == module and claim.check.__name__ == entry["check"]
            assert claim.statement == entry["statement"]
            # the id's prefix names the family (the entry point), which is the module's first part below proofs_checks
            assert entry["id"].split(".")[0] == module.split(".")[1]
            declared.append(entry["id"])
    assert len(declared) == len(set(declared))
    # every toolkit claim is declared in a table, in registration order within each module
    ours = [cid for cid, c in registered.items() if c.check.__module__.startswith("proofs_checks.")]
    assert sorted(ours) == sorted(declared)
    for table in TABLES:
        ids = [e["id"] for e in tomllib.loads(table.read_text(encoding="utf-8"))["claim"]]
        assert [cid for cid in ours if cid in ids] == ids


def test_every_claim_check_is_callable():
    for claim in load_claims().values():
        assert callable(claim.check), claim.id


def test_a_module_table_is_found_beside_its_module(registry):
    module = importlib.import_module("proofs_checks.blast")
    claims = register_table("proofs_checks.blast", vars(module))
    assert [c.id for c in claims] == ["blast.unrolled", "blast.policy-gradient"] == list(registry)
    assert claims[0].source == cite("last", "Sec. 4") and claims[0].check is module.check_unrolled
    assert claims[0].statistical and claims[0].sensitivity_reason == ORDERING_REASON


def test_package_data_ships_every_table():
    pyproject = tomllib.loads((ROOT.parent / "pyproject.toml").read_text(encoding="utf-8"))
    data = pyproject["tool"]["setuptools"]["package-data"]
    for folder in {t.parent for t in TABLES}:
        package = ".".join(folder.relative_to(ROOT.parent).parts)
        assert "*.toml" in data.get(package, []), f"package-data misses {package}"


def test_a_table_registers_its_claims_with_sources_kinds_and_defaults(registry, tmp_path):
    path = _write(tmp_path, """
[[claim]]
id = "toy.first"
check = "check_it"
source = "{last}, Sec. 1; {dht}"
statement = '''\\|w\\| \\le 1'''
assumptions = ["a", "b"]
mutations = ["c1", "c2"]
one_sided = { c1 = -1 }
sensitivity_target = 1
sensitivity_reason = "why"

[[claim]]
id = "toy.second"
check = "check_it"
source = "plain text"
statement = "x"
kind = "ordering"
method = "paired"
""")
    first, second = register_table("toy", NAMESPACE, path)
    assert list(registry) == ["toy.first", "toy.second"]
    assert first.source == f"{cite('last', 'Sec. 1')}; {cite('dht')}" and first.statement == r"\|w\| \le 1"
    assert first.assumptions == ["a", "b"] and first.mutations == ("c1", "c2") and first.one_sided == {"c1": -1}
    assert first.sensitivity_target == 1.0 and isinstance(first.sensitivity_target, float)
    assert not first.statistical and first.check is _check
    assert second.statistical and second.sensitivity_reason == ORDERING_REASON and second.method == "paired"
    assert second.assumptions == () and second.sensitivity_target == SENSITIVITY_TARGET


GOOD = 'id = "toy.a"\ncheck = "check_it"\nsource = "s"\nstatement = "x"\n'


@pytest.mark.parametrize(("text", "match"), [
    ("[[claim]]\n" + GOOD + "colour = 'red'\n", r"claim 'toy.a': unknown key\(s\) \['colour'\]"),
    ("[[claim]]\n" + GOOD.replace("check_it", "check_missing"), r"claim 'toy.a': unknown check 'check_missing'"),
    ("[[claim]]\n" + GOOD.replace("check_it", "not_a_function"), r"claim 'toy.a': unknown check 'not_a_function'"),
    ("[[claim]]\n" + GOOD + "\n[[claim]]\n" + GOOD, r"claim 'toy.a': duplicate id"),
    ("[[claim]]\n" + GOOD.replace('statement = "x"\n', ""),
     r"claim 'toy.a': missing required key\(s\) \['statement'\]"),
    ("[[claim]]\n" + GOOD.replace('id = "toy.a"\n', ""), r"claim '#1': missing required key\(s\) \['id'\]"),
    ("[[claim]]\n" + GOOD.replace('"s"', '"{nobody}, Sec. 2"'), r"claim 'toy.a': unknown reference \{nobody\}"),
    ("[[claim]]\n" + GOOD.replace('"s"', '"a { b"'), r"claim 'toy.a': unbalanced brace"),
    ("[[claim]]\n" + GOOD + "assumptions = 'one'\n", r"claim 'toy.a': assumptions must be a list"),
    ("[[claim]]\n" + GOOD + "assumptions = [1]\n", r"claim 'toy.a': assumptions must be a list of strings"),
    ("[[claim]]\n" + GOOD + "statistical = 'yes'\n", r"claim 'toy.a': statistical must be a bool"),
    ("[[claim]]\n" + GOOD + "kind = 'exact'\n", r"claim 'toy.a': kind must be one of"),
    ("[[claim]]\n" + GOOD + "kind = 'ordering'\nstatistical = true\n", r"claim 'toy.a': an ordering claim implies"),
    ("[[claim]]\n" + GOOD + "sensitivity_target = 0.5\n", r"claim 'toy.a': .*needs a sensitivity_reason"),
    ("[[claim]]\n" + GOOD.replace('"x"', '""'), r"claim 'toy.a': required key\(s\) \['statement'\] must not be empty"),
    ("[claims]\n" + GOOD, r"unknown top-level key\(s\) \['claims'\]"),
    ("# nothing\n", r"no \[\[claim\]\] tables"),
    ("[[claim]]\nid = 'toy.a\n", r"not valid TOML"),
])
def test_the_loader_refuses_a_faulty_table_naming_file_and_claim(registry, tmp_path, text, match):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=match) as info:
        register_table("toy", NAMESPACE, path)
    assert str(path) in str(info.value)
    assert registry == {}  # a faulty table registers nothing, not even its good claims


def test_an_id_registered_before_is_a_duplicate(registry, tmp_path):
    path = _write(tmp_path, "[[claim]]\n" + GOOD)
    register_table("toy", NAMESPACE, path)
    with pytest.raises(ValueError, match=r"claim 'toy.a': duplicate id"):
        register_table("toy", NAMESPACE, path)
    assert list(registry) == ["toy.a"]


def test_a_module_without_a_table_or_a_package_is_refused(registry):
    with pytest.raises(FileNotFoundError, match=r"no claim table proofs_checks/nothing_here.toml"):
        register_table("proofs_checks.nothing_here", {})
    with pytest.raises(ValueError, match="inside a package"):
        register_table("toplevel", {})
