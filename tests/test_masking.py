"""The masker (studio/masking.py): secrets masked by their exact value, in free text only when
long enough to be told from words, and under secret-looking keys in JSON."""

from __future__ import annotations

import json

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


def test_a_credential_typed_into_a_call_is_masked_in_the_trace(sandbox):
    """A query parameter or form field named like a credential (pasted from cURL, say) is a
    secret of the trace as the connection's are; a name like productKey is not."""
    from studio.engine import preview
    from tests.helpers import conn_for, job_for

    call = {
        "path": "/products",
        "query": [
            {"name": "api_key", "value": "k-typed-secret-123"},
            {"name": "productKey", "value": "P-visible-77"},
        ],
    }
    trace = preview(job_for([call]), conn_for(sandbox), max_pages=1)
    assert trace.error is None
    text = json.dumps(trace.as_dict())
    assert "k-typed-secret-123" not in text and "P-visible-77" in text
