"""The masker (studio/masking.py): secrets masked by their exact value, in free text only when
long enough to be told from words, and under secret-looking keys in JSON."""

from __future__ import annotations

from studio.masking import Masker
from studio.vault import MASK


def test_masking_is_by_exact_value_with_short_secrets_masked_only_as_whole_values():
    m = Masker(["ab", "long-secret-value"])
    assert m.value("ab") == MASK and m("lab ab") == "lab ab"  # too short for free text
    assert m('{"k": "ab", "x": "lab"}') == f'{{"k": "{MASK}", "x": "lab"}}'
    assert m("a=ab&b=lab") == f"a={MASK}&b=lab"
    assert m("error: long-secret-value refused") == f"error: {MASK} refused"
    assert m.json({"t": ["ab", "cab"], "access_token": "zzz"}) == {
        "t": [MASK, "cab"],
        "access_token": MASK,
    }
