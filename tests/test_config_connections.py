"""The connection models: what is valid, and how an invalid config is described to an analyst."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from studio.config.connections import Connection, FileServerConnection
from studio.config.kinds import CONNECTIONS, config_schema
from studio.errors import readable, roots_of
from tests.helpers import api_connection, sftp_connection


def messages(data: dict) -> list[str]:
    with pytest.raises(ValidationError) as e:
        CONNECTIONS.validate_config(data)
    return readable(e.value, roots_of(Connection))


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("ftp://example.com", "Base URL: must start with http:// or https://"),
        ("example.com/api", "Base URL: must start with http:// or https://"),
        ("https://", "Base URL: has no host name after the scheme"),
        ("https://exa mple.com", "Base URL: must not contain spaces"),
        ("https://example.com:99999", "Base URL: has an invalid port"),
        ("", "Base URL: is required"),
    ],
)
def test_base_url_errors_name_the_field(base_url, message):
    assert messages(api_connection(base_url=base_url)) == [message]


def test_nested_errors_name_the_path_in_form_words():
    data = api_connection(headers=[{"name": "X Bad", "value": "1"}])
    data["auth"] = {"type": "oauth2", "token_url": "nope", "client_id": "", "password": "p"}
    assert messages(data) == [
        "Authentication › Access token URL: must start with http:// or https://",
        "Authentication › Client ID: must not be empty",
        "Authentication › Client secret: is required",
        "Custom headers 1 › Header name: may hold letters, digits and - _ . only, "
        "no spaces or colons",
    ]


def test_password_grant_needs_a_username():
    data = api_connection()
    data["auth"] |= {"password": "pw"}
    assert messages(data) == [
        "Authentication › Username: is required when a password is given (password grant)"
    ]
    data["auth"] |= {"username": "ann"}
    assert CONNECTIONS.validate_config(data).auth.grant == "password"


def test_unknown_auth_type_and_unknown_keys_are_refused():
    data = api_connection(auth={"type": "kerberos"}, colour="blue")
    assert messages(data) == [
        "Authentication: must be one of 'none', 'oauth2', 'basic', 'bearer', 'api_key'",
        "colour: is not a known setting",
    ]


def test_duplicate_header_names_are_refused():
    data = api_connection(
        headers=[{"name": "Accept", "value": "a"}, {"name": "accept", "value": "b"}]
    )
    assert messages(data) == ["Custom headers: header 'accept' is given twice"]


def test_file_server_defaults_and_errors():
    assert CONNECTIONS.validate_config(sftp_connection()).port == 22
    ftp = CONNECTIONS.validate_config(sftp_connection(protocol="ftps", password="x"))
    assert (ftp.port, ftp.passive, ftp.target) == (21, True, "ftps://files.example.com:21/")
    assert messages(
        sftp_connection(host="sftp://files.example.com/in", port="abc", username="")
    ) == [
        "Host: give the host name only, without ftp:// or sftp://",
        "Port: must be a whole number",
        "Username: must not be empty",
    ]
    assert messages(sftp_connection(protocol="ftp", private_key="KEY")) == [
        "Private key (SFTP): only SFTP connections use a private key"
    ]
    assert messages(sftp_connection(port=70000)) == ["Port: must be at most 65535"]


def test_header_secret_flag_defaults_from_its_name():
    conn = CONNECTIONS.validate_config(
        api_connection(
            headers=[{"name": "Authorization", "value": "x"}, {"name": "Accept", "value": "y"}]
        )
    )
    assert [h.secret for h in conn.headers] == [True, False]
    assert conn.headers[0].secret_fields() == ["value"]
    assert conn.headers[1].secret_fields() == []


def test_secret_fields_are_declared_on_the_models():
    assert FileServerConnection.model_fields["password"].metadata
    schema = config_schema()
    oauth = schema["$defs"]["OAuth2Auth"]["properties"]["client_secret"]
    assert oauth["format"] == "password" and "writeOnly" not in oauth  # views return the mask
    assert {"Connection", "ApiConnection", "FileServerConnection"} <= set(schema["$defs"])
