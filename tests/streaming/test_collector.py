"""The stage loop's cycle-collector settings (pure: no services)."""

from __future__ import annotations

import gc

import pytest

from backoffice.streaming.consumer import YOUNG_COLLECTION_EVERY, settle_collector


@pytest.fixture
def collector():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settling_freezes_what_start_up_loaded_and_spaces_young_collections(collector):
    loaded: list[object] = []  # a container, reachable as start-up's objects are
    assert any(loaded is o for o in gc.get_objects())

    settle_collector()

    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_COLLECTION_EVERY
    assert gc.isenabled()
    assert not any(loaded is o for o in gc.get_objects())  # frozen: out of every generation


def test_cycles_made_after_settling_are_still_collected(collector):
    settle_collector()
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle

    assert gc.collect() >= 1
