"""ULIDs: 26 characters of Crockford's base32 that sort by the millisecond they encode, strictly
increasing within one process, one at a time or in bulk."""

from __future__ import annotations

import random

from outlast.core.ids import new_ulid, new_ulids, ulid_floor

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def decode(ulid: str) -> tuple[int, int]:
    value = 0
    for char in ulid:
        value = value * 32 + ALPHABET.index(char)
    return value >> 80, value & ((1 << 80) - 1)


def test_ids_encode_their_millisecond_and_increase_one_at_a_time_and_in_bulk() -> None:
    ms = 1_795_000_000_123
    ids = [new_ulid(ms) for _ in range(3000)] + new_ulids(5000, ms) + [new_ulid(ms)]
    assert all(len(i) == 26 and set(i) <= set(ALPHABET) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    decoded = [decode(i) for i in ids]
    assert {t for t, _ in decoded} == {ms}
    randoms = [r for _, r in decoded]
    assert randoms == list(range(randoms[0], randoms[0] + len(ids)))  # each the one after the last
    assert ulid_floor(ms) < ids[0] < ulid_floor(ms + 1)


def test_the_random_part_is_encoded_exactly_across_carries() -> None:
    """Crossing a multiple of 1024 changes more than the last two characters."""
    for _ in range(2000):
        ms = random.randrange(1 << 40)
        [a, b] = new_ulids(2, ms)
        (_, ra), (_, rb) = decode(a), decode(b)
        assert rb == ra + 1
    ms = 1_795_000_000_999
    ids = new_ulids(4096, ms)  # at least three carries out of the last ten bits
    assert [decode(i)[1] for i in ids] == list(range(decode(ids[0])[1], decode(ids[0])[1] + 4096))
