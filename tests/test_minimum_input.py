"""The minimum-input search that reuses a checked spec's resolved network agrees with
the one that resolves the spec afresh (and, without the top, with `without_top`).

Code backends and `irc summary` ask for the minimum input with the spec's graph
(`minimum_input(spec, graph=...)`), which probes the network the check already
resolved instead of resolving it twice more; this is the same answer as the
definition, on every shipped spec and scale preset and on the differential
test's random specs (non-square inputs, aux heads, valid windows).
"""

from __future__ import annotations

import pytest

from irc_cnn.compiler.infer import minimum_input, without_top
from irc_cnn.compiler.pipeline import check_bytes, check_file
from tests.conftest import ROOT

SPECS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "specs").rglob("*.yaml"))


def _results():
    for path in SPECS:
        result = check_file(ROOT / path, display=path)
        yield path, result
        for preset in result.spec.scales:
            yield f"{path}@{preset}", check_file(ROOT / path, display=path, scale=preset)


def _assert_same(result) -> None:
    spec, graph = result.spec, result.graph
    for above in (True, False):
        assert minimum_input(spec, above, graph) == minimum_input(spec, above)
        reused = minimum_input(spec, above, graph, include_top=False)
        assert reused == minimum_input(without_top(spec), above)


@pytest.mark.parametrize(("name", "result"), list(_results()))
def test_shipped_specs(name, result):
    assert result.ok, name
    _assert_same(result)


def test_seed_irv2_figures():
    """The seed's head and aux head need the full 299; without them 75 will do."""
    result = check_file(ROOT / "specs/irv2.yaml")
    minimum = (minimum_input(result.spec, graph=result.graph),)
    minimum += (minimum_input(result.spec, graph=result.graph, include_top=False),)
    assert minimum == (299, 75)


@pytest.mark.parametrize("seed", range(200))
def test_random_specs(seed):
    differential = pytest.importorskip("tests.test_differential")
    result = check_bytes(differential.spec_text(seed).encode(), f"random_{seed}.yaml")
    assert result.ok
    _assert_same(result)
