"""Ids of names (random streams, flows) must not change between versions: stored runs' draws depend on them."""

from __future__ import annotations

from aftermath.model.compile import stable_id


def test_ids_of_names_are_the_ones_earlier_versions_gave() -> None:
    # recorded from the version that introduced them (blake2b, 8 bytes, little-endian, 63 bits)
    assert stable_id("parameter samples") == 4307812962097075577
    assert stable_id("leaving") == 1377525674001853082
    assert 0 <= stable_id("") < 2**63
