"""Signing keys: the two derivations Inngest's SDKs expect (HMAC over the hex text, bearer over its bytes)."""

import hashlib
import hmac

from outlast.protocol.signing import bearer_matches, bearer_token, sign, signature_matches

KEY = "signkey-prod-" + "ab" * 32


def test_the_bearer_token_hashes_the_hex_decoded_key_and_keeps_the_prefix() -> None:
    assert bearer_token(KEY) == "signkey-prod-" + hashlib.sha256(bytes.fromhex("ab" * 32)).hexdigest()
    assert bearer_matches(f"Bearer {bearer_token(KEY)}", ("signkey-prod-" + "cd" * 32, KEY))
    assert not bearer_matches(f"Bearer {KEY}", (KEY,))  # the raw key is not the token
    assert not bearer_matches(None, (KEY,))


def test_a_signature_is_an_hmac_of_body_and_time_keyed_by_the_hex_text() -> None:
    body = b'{"a":1}'
    expected = hmac.new(("ab" * 32).encode(), body + b"1700000000", hashlib.sha256).hexdigest()
    assert sign(body, KEY, 1_700_000_000) == f"t=1700000000&s={expected}"
    assert signature_matches(sign(body, KEY, 1_700_000_000), body, (KEY,))
    assert not signature_matches(sign(body, KEY, 1_700_000_000), body + b" ", (KEY,))
    assert not signature_matches("t=x&s=y", body, (KEY,))
