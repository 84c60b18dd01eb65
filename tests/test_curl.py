"""Pasting a cURL command makes a call; credentials are set apart for the connection."""

from __future__ import annotations

import pytest

from studio.config.jobs import Call
from studio.curl import parse_curl
from studio.errors import StudioError


def test_get_with_query_headers_and_a_bearer_token():
    parsed = parse_curl(
        "curl -s 'https://api.example.com/v1/products?page=2&size=50' \\\n"
        "  -H 'Accept: application/json' -H 'Authorization: Bearer abc123' --compressed",
        base_url="https://api.example.com/v1",
    )
    assert parsed.call == {
        "method": "GET",
        "path": "/products",
        "query": [{"name": "page", "value": "2"}, {"name": "size", "value": "50"}],
        "headers": [{"name": "Accept", "value": "application/json"}],
        "body": {"type": "none"},
    }
    assert parsed.secret_headers == [{"name": "Authorization", "value": "Bearer abc123"}]
    Call.model_validate(parsed.call)


def test_post_json_form_and_basic_user():
    parsed = parse_curl(
        """curl -X POST https://other.example.com/exports -u ann:pw \
        -H 'Content-Type: application/json' -d '{"format": "csv"}'""",
        base_url="https://x.example",
    )
    assert parsed.call["path"] == "https://other.example.com/exports"  # another host: absolute
    assert parsed.call["body"] == {"type": "json", "content": '{\n  "format": "csv"\n}'}
    assert parsed.secret_headers == [{"name": "Authorization", "value": "Basic YW5uOnB3"}]
    form = parse_curl("curl https://x.example/login --data 'user=ann&scope=read'")
    assert form.call["method"] == "POST"
    assert form.call["body"] == {
        "type": "form",
        "fields": [{"name": "user", "value": "ann"}, {"name": "scope", "value": "read"}],
    }
    get = parse_curl("curl -G https://x.example/search -d q=lamp")
    assert get.call["method"] == "GET" and get.call["query"] == [{"name": "q", "value": "lamp"}]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("wget https://x", "cURL command: must start with curl"),
        ("curl 'https://x", "cURL command: No closing quotation (an unclosed quote?)"),
        ("curl -H 'A: b'", "cURL command: no URL found"),
        ("curl ftp://x/y", "cURL command: 'ftp://x/y' is not an http(s) URL"),
        ("curl --proxy p https://x", "cURL command: the option --proxy is not supported"),
    ],
)
def test_bad_commands_say_what_is_wrong(command, message):
    with pytest.raises(StudioError) as e:
        parse_curl(command)
    assert str(e.value) == message
