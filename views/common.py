"""What the config pages share: the message shown after a change, and the status and delete
actions of a saved config with the dialog that confirms a delete. Not a page of its own."""

from collections.abc import Callable

import streamlit as st

from studio.access import Forbidden, Who, require
from studio.config.store import ConfigStore
from studio.errors import StudioError

MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()#+-.!<>|~$"})


def plain(text: str) -> str:
    """Text from elsewhere (a server's error, a run's message) shown as it is: Streamlit draws
    messages as markdown, and a server's answer must not draw links or load images."""
    return str(text).translate(MARKDOWN)


def show_error(e: StudioError, where=st) -> None:
    """Every message of a config error (one per field), or the error's one sentence."""
    for message in getattr(e, "messages", None) or [str(e)]:
        where.error(message)


def allowed(who: Who, role: str, doing: str) -> bool:
    """The server's check before a change, for an action a page already hides from lower
    roles: True if ``who`` may, else False after an error saying why (a page left open while
    an admin lowered the role gets this far)."""
    try:
        require(who, role, doing)
    except Forbidden as e:
        st.error(str(e))
        return False
    return True


def flash(prefix: str, message: str) -> None:
    """Show ``message`` after the rerun that follows a change."""
    st.session_state[f"{prefix}_flash"] = message


def show_flash(prefix: str) -> None:
    if message := st.session_state.pop(f"{prefix}_flash", None):
        st.success(message)


def config_actions(
    store: ConfigStore,
    kind: str,
    model,
    prefix: str,
    on_deleted: Callable[[], None],
    who: Who,
    delete_role: str = "editor",
):
    """Disable or Activate (for editors), and Delete… behind a confirmation (for
    ``delete_role``); returns the button bar so that a page can add its own buttons to it. The
    open dialog is kept in the session, so that it survives full reruns and not only the
    dialog's own. Each action checks the role again when it runs."""
    label = store.kinds[kind].label
    confirm = f"{prefix}_confirm"

    def close() -> None:
        st.session_state.pop(confirm, None)

    @st.dialog(f"Delete {label}", on_dismiss=close)
    def dialog() -> None:
        users = store.dependents(kind, model.id)
        if users:
            st.error(f"{model.name!r} is used by {', '.join(users)}; change or delete those first.")
            if st.button("Close", key=f"{prefix}_delete_close"):
                close()
                st.rerun()
            return
        st.write(f"Delete **{model.name}**? This cannot be undone.")
        yes, no = st.columns(2)
        if yes.button("Delete", type="primary", key=f"{prefix}_delete_yes"):
            try:
                require(who, delete_role, f"delete {label} {model.name!r}")
                store.delete(kind, model.id, source="studio")
            except StudioError as e:
                st.error(str(e))
                return
            close()
            flash(prefix, f"Deleted {label} {model.name!r}.")
            on_deleted()
            st.rerun()
        if no.button("Cancel", key=f"{prefix}_delete_no"):
            close()
            st.rerun()

    bar = st.container(horizontal=True)
    status, verb = ("disabled", "Disable") if model.status == "active" else ("active", "Activate")
    if bar.button(verb, key=f"{prefix}_{verb.lower()}") and allowed(
        who, "editor", f"{verb.lower()} {label} {model.name!r}"
    ):
        store.set_status(kind, model.id, status, source="studio")
        flash(prefix, f"{verb}d {model.name!r}.")
        st.rerun()
    if who.can(delete_role) and bar.button("Delete…", key=f"{prefix}_delete"):
        st.session_state[confirm] = model.id
    if st.session_state.get(confirm) == model.id:
        dialog()
    return bar
