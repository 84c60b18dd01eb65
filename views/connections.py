"""Connections: list, create, edit, activate, disable and delete REST APIs and file servers.

Layout only: every action is one call on ``ConfigStore``, which validates, masks and audits.
Widget keys carry the connection's id so that opening another connection starts from its own
stored values, while an unsaved edit survives the reruns that switching an option causes.
"""

import pandas as pd
import streamlit as st

from studio.broker import QUEUE
from studio.config.connections import (
    AUTH_LABELS,
    DEFAULT_PORTS,
    KIND_LABELS,
    ApiConnection,
    FileServerConnection,
)
from studio.config.store import ConfigStore, change_text
from studio.connectivity import check_connection
from studio.errors import StudioError
from studio.vault import MASK
from views.access import gate
from views.common import allowed, config_actions, flash, show_error, show_flash

NEW = "+ New connection"
KEEP_HELP = "The dots stand for the stored secret: leave them to keep it, or type a new one."

store = ConfigStore()
state = st.session_state
who = gate(store)


def pick(name: str) -> None:
    state["conn_pick_next"] = name


st.title("Connections")
# Streamlit's password input keeps a typed value in the browser when the focus moves to its own
# "Show password" button (Tab does that), and nothing sends it later: Create then saw an empty
# secret while the field showed dots. Without the button, Tab leaves the field and sends it.
st.html('<style>button[aria-label="Show password"] {display: none}</style>')
show_flash("conn")

connections = store.list("connections")
routed = any(c.run_queue for c in connections)  # the column only once a connection routes
if connections:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Name": c.name,
                    "Kind": KIND_LABELS[c.kind],
                    "URL or host": c.target,
                    "Auth": c.auth_label,
                    "Status": c.status,
                    **({"Worker queue": c.run_queue or QUEUE} if routed else {}),
                    "Updated": c.updated_at,
                }
                for c in connections
            ]
        ),
        hide_index=True,
        width="stretch",
        placeholder="",
        column_config={"Updated": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")},
    )
else:
    st.info("No connections yet. Create one below." if who.can("editor") else "No connections yet.")
if not who.can("editor"):
    st.caption("You are a viewer: an editor creates and changes connections.")
    st.stop()

if "conn_pick_next" in state:
    state["conn_pick"] = state.pop("conn_pick_next")
names = [c.name for c in connections]
if state.get("conn_pick") not in [NEW, *names]:
    state["conn_pick"] = NEW
choice = st.selectbox("Open", [NEW, *names], key="conn_pick")
current = next((c for c in connections if c.name == choice), None)
cid = current.id if current else "new"


def key(field: str) -> str:
    return f"conn.{cid}.{field}"


def secret_input(label: str, value: str, field: str) -> str:
    return st.text_input(
        label,
        value=value,
        type="password",
        key=key(field),
        help=KEEP_HELP if value == MASK else None,
    )


if current is not None:
    st.subheader(current.name)
    st.caption(f"{KIND_LABELS[current.kind]} · {current.status} · id `{current.id}`")
    config_actions(
        store, "connections", current, "conn", lambda: pick(NEW), who, delete_role="admin"
    )
else:
    st.subheader("New connection")

kinds = list(KIND_LABELS)
kind = st.radio(
    "Kind",
    kinds,
    index=kinds.index(current.kind) if current else 0,
    format_func=KIND_LABELS.get,
    horizontal=True,
    key=key("kind"),
    disabled=current is not None,
)
data: dict = {
    "kind": kind,
    "name": st.text_input("Name", current.name if current else "", key=key("name")),
}
if current is not None:
    data.update(id=current.id, status=current.status)

if kind == "api":
    api = current if isinstance(current, ApiConnection) else None
    data["base_url"] = st.text_input(
        "Base URL",
        api.base_url if api else "",
        key=key("base_url"),
        placeholder="https://api.example.com/v1",
    )
    auth_types = list(AUTH_LABELS)
    stored_auth = api.auth if api else None
    auth_type = st.selectbox(
        "Authentication",
        auth_types,
        index=auth_types.index(stored_auth.type) if stored_auth else 0,
        format_func=AUTH_LABELS.get,
        key=key("auth_type"),
    )
    # Values of the stored auth only when it is of the chosen type: no secret crosses types.
    old = stored_auth.model_dump() if stored_auth and stored_auth.type == auth_type else {}
    auth: dict = {"type": auth_type}
    if auth_type == "oauth2":
        auth["token_url"] = st.text_input(
            "Access token URL", old.get("token_url", ""), key=key("token_url")
        )
        left, right = st.columns(2)
        auth["client_id"] = left.text_input(
            "Client ID", old.get("client_id", ""), key=key("client_id")
        )
        with right:
            auth["client_secret"] = secret_input(
                "Client secret", old.get("client_secret", ""), "client_secret"
            )
        left, right = st.columns(2)
        auth["username"] = left.text_input(
            "Username (password grant)",
            old.get("username", ""),
            key=key("oauth_user"),
            help="A username and password select the password grant instead of client credentials.",
        )
        with right:
            auth["password"] = secret_input(
                "Password (password grant)", old.get("password", ""), "oauth_pw"
            )
        left, right = st.columns(2)
        auth["scope"] = left.text_input("Scope", old.get("scope", ""), key=key("scope"))
        client_auth = ["body", "basic"]
        auth["client_auth"] = right.selectbox(
            "Send client credentials",
            client_auth,
            index=client_auth.index(old.get("client_auth", "body")),
            format_func={"body": "In the request body", "basic": "As HTTP basic auth"}.get,
            key=key("client_auth"),
        )
    elif auth_type == "basic":
        auth["username"] = st.text_input("Username", old.get("username", ""), key=key("basic_user"))
        auth["password"] = secret_input("Password", old.get("password", ""), "basic_pw")
    elif auth_type == "bearer":
        auth["token"] = secret_input("Bearer token", old.get("token", ""), "token")
    elif auth_type == "api_key":
        left, right = st.columns([2, 1])
        auth["name"] = left.text_input(
            "API key name", old.get("name", ""), key=key("key_name"), placeholder="X-API-Key"
        )
        places = ["header", "query"]
        auth["placement"] = right.selectbox(
            "Send in",
            places,
            index=places.index(old.get("placement", "header")),
            key=key("key_place"),
            format_func={"header": "a header", "query": "the query string"}.get,
        )
        auth["value"] = secret_input("API key value", old.get("value", ""), "key_value")
    data["auth"] = auth

    st.markdown("**Custom headers** sent on every call")
    headers = pd.DataFrame(
        [h.model_dump() for h in api.headers] if api else [], columns=["name", "value", "secret"]
    )
    edited = st.data_editor(
        headers,
        num_rows="dynamic",
        width="stretch",
        placeholder="",
        key=key("headers"),
        column_config={
            "name": st.column_config.TextColumn("Name", required=True),
            "value": st.column_config.TextColumn("Value", help=KEEP_HELP),
            "secret": st.column_config.CheckboxColumn("Secret", help="Encrypt and mask the value"),
        },
    )
    data["headers"] = [
        {k: v for k, v in row.items() if not (k == "secret" and pd.isna(v))}
        for row in edited.fillna({"name": "", "value": ""}).to_dict("records")
        if row.get("name")
    ]
    left, right = st.columns(2)
    data["timeout"] = left.number_input(
        "Timeout (seconds)",
        min_value=1.0,
        max_value=3600.0,
        value=float(api.timeout if api else 30),
        key=key("timeout"),
    )
    data["verify_tls"] = right.checkbox(
        "Verify TLS certificates", api.verify_tls if api else True, key=key("verify_tls")
    )
    data["test_path"] = st.text_input(
        ApiConnection.model_fields["test_path"].title,
        api.test_path if api else "",
        key=key("test_path"),
        placeholder="/me",
        help=ApiConnection.model_fields["test_path"].description,
    )
    left, right = st.columns(2)
    for col, name in ((left, "max_response_mb"), (right, "max_download_mb")):
        info = ApiConnection.model_fields[name]
        data[name] = col.number_input(
            info.title,
            min_value=1.0,
            max_value=1_000_000.0,
            value=float(getattr(api, name) if api else info.default),
            key=key(name),
            help=info.description,
        )
else:
    srv = current if current is not None and current.kind == "file_server" else None
    protocols = list(DEFAULT_PORTS)
    left, right = st.columns([1, 3])
    protocol = left.selectbox(
        "Protocol",
        protocols,
        index=protocols.index(srv.protocol if srv else "sftp"),
        format_func={"ftp": "FTP", "ftps": "FTPS (TLS)", "sftp": "SFTP"}.get,
        key=key("protocol"),
    )
    data["protocol"] = protocol
    data["host"] = right.text_input(
        "Host", srv.host if srv else "", key=key("host"), placeholder="files.example.com"
    )
    left, right = st.columns([1, 3])
    port = left.number_input(
        "Port",
        min_value=0,
        max_value=65535,
        value=srv.port if srv else 0,
        key=key("port"),
        help=f"0 uses the protocol's default ({DEFAULT_PORTS[protocol]})",
    )
    data["port"] = int(port) or None
    data["root"] = right.text_input("Root folder", srv.root if srv else "/", key=key("root"))
    left, right = st.columns(2)
    data["username"] = left.text_input("Username", srv.username if srv else "", key=key("username"))
    with right:
        data["password"] = secret_input("Password", srv.password if srv else "", "password")
    if protocol == "sftp":
        data["private_key"] = st.text_area(
            "Private key (SFTP, PEM)",
            srv.private_key if srv else "",
            key=key("private_key"),
            help=KEEP_HELP
            if srv and srv.private_key == MASK
            else "Paste an OpenSSH or PEM private key",
        )
    else:
        data["passive"] = st.checkbox(
            "Passive mode", srv.passive if srv else True, key=key("passive")
        )
    if protocol == "ftps":
        fields = FileServerConnection.model_fields
        left, right = st.columns(2)
        modes = ["explicit", "implicit"]
        data["ftps_mode"] = left.radio(
            fields["ftps_mode"].title,
            modes,
            index=modes.index(srv.ftps_mode if srv else "explicit"),
            format_func={"explicit": "Explicit (AUTH TLS)", "implicit": "Implicit (port 990)"}.get,
            horizontal=True,
            key=key("ftps_mode"),
            help=fields["ftps_mode"].description,
        )
        data["verify_tls"] = right.checkbox(
            fields["verify_tls"].title,
            srv.verify_tls if srv else True,
            key=key("ftps_verify"),
            help=fields["verify_tls"].description,
        )
        data["tls_fingerprint"] = st.text_input(
            fields["tls_fingerprint"].title,
            srv.tls_fingerprint if srv else "",
            key=key("tls_fingerprint"),
            placeholder="AB:CD:…  (test the connection: a refused certificate shows its own)",
            help=fields["tls_fingerprint"].description,
        )
        data["ca_certificate"] = st.text_area(
            fields["ca_certificate"].title,
            srv.ca_certificate if srv else "",
            key=key("ca_certificate"),
            placeholder="-----BEGIN CERTIFICATE-----",
            help=fields["ca_certificate"].description,
        )

# Shown in the embedded mode too, where it is unused (its help says so): the form saves the
# whole config, so a hidden field would reset a stored queue, and a connection is often set up
# before the runs go to workers.
queue_field = ApiConnection.model_fields["run_queue"]
data["run_queue"] = st.text_input(
    queue_field.title,
    current.run_queue if current else "",
    key=key("run_queue"),
    placeholder=f"{QUEUE} (the default queue)",
    help=queue_field.description,
)

if st.button("Save" if current else "Create", type="primary", key="conn_save") and allowed(
    who, "editor", "save a connection"
):
    try:
        if current is None:
            saved = store.create("connections", data, source="studio")
            for k in [k for k in state if str(k).startswith("conn.new.")]:
                del state[k]
        else:
            saved = store.update("connections", current.id, data, source="studio")
    except StudioError as e:
        show_error(e)
    else:
        flash("conn", f"Saved connection {saved.name!r}.")
        pick(saved.name)
        st.rerun()

if current is not None:
    # The saved connection, as a run would use it (unsaved edits are not tested).
    if st.button("Test connection", key="conn_test", help="Log in and reach the server"):
        with st.spinner(f"Testing {current.name}…"):
            stored = store.get("connections", current.id, reveal=True)
            check = check_connection(stored, store.home)
        (st.success if check.ok else st.error)(check.message)
    with st.expander("Audit trail"):
        trail = store.audit("connections", current.id)
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "When (UTC)": e["at"],
                        "Action": e["action"],
                        "Source": e["source"],
                        "By": e.get("user", ""),
                        "Changes": "; ".join(change_text(c) for c in e["changes"]),
                    }
                    for e in trail
                ]
            ),
            hide_index=True,
            width="stretch",
            placeholder="",
        )
