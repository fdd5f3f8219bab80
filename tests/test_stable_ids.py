"""Ids of names (random streams, flows) and the scenario and model hashes must not change between versions:
stored runs' draws depend on the ids, and `calibrate --resume` and the shipped posterior check the hashes."""

from __future__ import annotations

from aftermath.model.compile import model_hash, scenario_hash, stable_id
from tests.conftest import scenario_from


def test_ids_of_names_are_the_ones_earlier_versions_gave() -> None:
    # recorded from the version that introduced them (blake2b, 8 bytes, little-endian, 63 bits)
    assert stable_id("parameter samples") == 4307812962097075577
    assert stable_id("leaving") == 1377525674001853082
    assert 0 <= stable_id("") < 2**63


def test_the_scenario_and_model_hashes_are_the_ones_earlier_versions_recorded() -> None:
    """A stored calibration records its scenario's hash and a posterior draws file its model's; a change in how
    either is computed (the keys as written, `from` not `from_`; sorted keys; 16 hex digits of sha256) would make
    `calibrate --resume` refuse every stored calibration and orphan every posterior. Recorded from this version;
    a new field in the scenario's schema changes them too, and then stored calibrations cannot be resumed."""
    fixed = {"fixed": "test", "assumption": "test"}
    scenario = scenario_from({
        "name": "hashed", "title": "a scenario whose hashes are pinned",
        "time": {"start": "2015-01", "end": "2015-03"},
        "compartments": {"active": {"initial": 100, "assumption": "test"}, "gone": {}},
        "parameters": {"leave": {"unit": "per month", "value": 0.1, **fixed}},
        "flows": [{"name": "leaving", "from": "active", "to": "gone", "rate": "leave"}],
    })
    assert scenario_hash(scenario) == "be8f33e255176129"
    assert model_hash(scenario) == "ac0ca7f183d6bda5"
