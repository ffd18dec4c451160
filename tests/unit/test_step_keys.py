"""Step keys: SHA-1 hex of the id (of `id:n` for its n-th repeat), as Inngest's SDKs hash them, so a
memo written by one means the same to the other; remembered hashes change nothing."""

import hashlib

from outlast.core.keys import StepCounter, step_key


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def test_keys_are_the_sha1_of_the_id_then_of_id_colon_n_for_repeats() -> None:
    counter = StepCounter()
    assert [counter.next_key(i) for i in ("a", "a", "b", "a")] == [sha1("a"), sha1("a:1"), sha1("b"), sha1("a:2")]
    assert step_key("a", 0) == sha1("a")
    assert step_key("a", 2) == sha1("a:2")


def test_every_attempt_numbers_its_steps_afresh_with_the_same_keys() -> None:
    first, second = StepCounter(), StepCounter()
    keys = [first.next_key(i) for i in ("fetch", "fetch", "fetch:1", "é/ü 🙂")]
    assert [second.next_key(i) for i in ("fetch", "fetch", "fetch:1", "é/ü 🙂")] == keys
    assert keys == [sha1("fetch"), sha1("fetch:1"), sha1("fetch:1:1"), sha1("é/ü 🙂")]
