"""The redactor masks exactly what the alternation of its secrets matches, whichever way it looks for them."""

from __future__ import annotations

import random
import re
import string

import pytest

from llm_proxy.observe.redact import MASK, SCAN_LIMIT, Redactor


def _secret(rnd: random.Random) -> str:
    head = rnd.choice(["sk-", "sk-ant-", "AKIA", "key-", "xai-", ""])
    return head + "".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(rnd.randint(6, 30)))


def _text(rnd: random.Random, secrets: list[str]) -> str:
    """Filler with some secrets, some of their prefixes (near misses) and some joined to the next word."""
    parts: list[str] = []
    for _ in range(rnd.randint(0, 12)):
        choice = rnd.random()
        if choice < 0.15 and secrets:
            parts.append(rnd.choice(secrets))
        elif choice < 0.35 and secrets:
            secret = rnd.choice(secrets)
            parts.append(secret[: rnd.randint(1, len(secret) - 1)])
        else:
            parts.append("".join(rnd.choice(string.ascii_letters + " -_/") for _ in range(rnd.randint(0, 40))))
    return rnd.choice(["", " ", "\n"]).join(parts)


def _expected(secrets: list[str], text: str) -> str:
    unique = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)
    return re.sub("|".join(re.escape(s) for s in unique), MASK, text) if unique else text


@pytest.mark.parametrize("count", [1, 3, SCAN_LIMIT, SCAN_LIMIT + 1, 60])
def test_masks_what_the_alternation_matches(count: int) -> None:
    """Below and above ``SCAN_LIMIT`` (one by one first, or the alternation alone): the same result as one
    ``re.sub`` of the alternation, in text, bytes and headers, over random texts with secrets and near misses."""
    rnd = random.Random(count)
    secrets = [_secret(rnd) for _ in range(count)]
    redactor = Redactor(secrets)
    masked = 0
    for _ in range(400):
        text = _text(rnd, secrets)
        expected = _expected(secrets, text)
        masked += expected != text
        assert redactor.text(text) == expected
        assert redactor.data(text.encode()) == expected.encode()
        assert redactor.found_in(text.encode()) is (expected != text)
        headers = [(b"x-a", b"plain"), (b"x-b", text.encode())]
        assert redactor.headers(headers) == [(b"x-a", b"plain"), (b"x-b", expected.encode())]
    assert 50 < masked < 350  # both kinds of text were tried


def test_clean_text_is_returned_as_it_is() -> None:
    redactor = Redactor(["sk-secret-value", "AKIAEXAMPLE00"])
    text = "POST /p bench -> upstream-model 200 1.2ms 1024B sk-secret-valu"
    assert redactor.text(text) is text
    data = text.encode()
    assert redactor.data(data) is data
    headers = [(b"content-type", b"application/json")]
    assert redactor.headers(headers) is headers


def test_overlapping_secrets_mask_the_longest() -> None:
    redactor = Redactor(["sk-abcdef", "sk-abcdef-longer", "short"])  # "short" (5 characters) is no secret
    assert redactor.text("a sk-abcdef-longer b sk-abcdef c short") == f"a {MASK} b {MASK} c short"


def test_added_secrets_are_masked_beyond_the_scan_limit() -> None:
    first = [f"sk-first-{i:03d}" for i in range(SCAN_LIMIT)]
    redactor = Redactor(first)
    redactor.add(["sk-added-secret"])
    assert redactor.text("x sk-first-000 y sk-added-secret") == f"x {MASK} y {MASK}"
    redactor.update([])
    assert not redactor.active
    assert redactor.text("sk-first-000") == "sk-first-000"
