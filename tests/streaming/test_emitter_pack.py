"""The outbox row's packing: what a batch emitted comes back exactly, in order (no services)."""

from __future__ import annotations

import uuid
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from backoffice.streaming.emitter import pack_events, physical, unpack_events
from backoffice.streaming.envelope import Encoded

encoded = st.builds(
    Encoded,
    topic=st.text(min_size=1, max_size=40),
    key=st.none() | st.binary(max_size=30),
    value=st.binary(max_size=300),
    headers=st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=4),
    event_id=st.uuids(),
)


@given(st.lists(encoded, max_size=20))
def test_packed_events_unpack_to_the_same_events_in_the_same_order(events):
    assert unpack_events(pack_events(events)) == events


def test_an_empty_key_is_not_a_missing_key():
    event_id = uuid.uuid4()
    events = [Encoded("t", b"", b"v", {}, event_id), Encoded("t", None, b"v", {}, event_id)]
    assert [e.key for e in unpack_events(pack_events(events))] == [b"", None]


def test_events_are_addressed_to_their_physical_topics(settings):
    settings.STREAMING = replace(settings.STREAMING, topic_prefix="pfx.")
    event = Encoded("trades.captured", b"k", b"{}", {"schema": "x"}, uuid.uuid4())
    [stored] = physical([event])
    assert stored == replace(event, topic="pfx.trades.captured")
