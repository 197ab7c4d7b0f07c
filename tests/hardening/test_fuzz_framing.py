"""Fuzz the request framing layer of both codecs with random and mutated bytes,
fed whole and one byte at a time.  Allowed outcomes: well-formed request
events, or a rejection with 400/431/501/505; both codecs agree; any other
exception (or a hang, caught by the pytest timeout) fails."""

from __future__ import annotations

import pytest
from fuzzlib import SCALE, corpus_inputs, inputs, parse
from hypothesis import HealthCheck, given, settings
from support import compiled_codec

from fastproxy.codec import fast, reference

# None when not built or under FASTPROXY_NO_EXTENSIONS: the pure codecs alone.
compiled = compiled_codec()

FUZZ = settings(
    max_examples=400 * SCALE,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def outcome(data: bytes, bytewise: bool) -> tuple[object, list[tuple]]:
    a = parse(fast, data, bytewise)
    b = parse(reference, data, bytewise)
    assert a[0] == b[0], (data, a, b)
    if a[0] == "ok":
        assert a[1] == b[1], data
    if compiled is not None:
        assert parse(compiled, data, bytewise) == a, data
    return a


@FUZZ
@given(inputs)
def test_fuzz_whole(data):
    outcome(data, False)


@FUZZ
@given(inputs)
def test_fuzz_bytewise_matches_whole(data):
    whole = outcome(data, False)
    drip = outcome(data, True)
    # Packetisation never changes the verdict, and accepted input yields the same events.
    assert whole[0] == drip[0], data
    if whole[0] == "ok":
        assert whole[1] == drip[1], data


@pytest.mark.parametrize("name, data", corpus_inputs())
def test_corpus_replay_framing(name, data):
    assert outcome(data, False)[0] == outcome(data, True)[0]
