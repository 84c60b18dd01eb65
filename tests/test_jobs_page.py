"""The job builder, driven through AppTest against the demo sandbox on 127.0.0.1."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from studio.config.connections import NoAuth
from studio.config.store import ConfigStore
from tests.helpers import ROOT, conn_for, server_folder


@pytest.fixture
def conn(home, sandbox):
    data = conn_for(sandbox).model_dump(mode="json", exclude={"id", "created_at", "updated_at"})
    return ConfigStore(home).create("connections", data, source="cli")


def open_builder() -> AppTest:
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60).run()
    at.switch_page("views/jobs.py").run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest, kind: str) -> list[str]:
    return [e.value for e in getattr(at, kind)]


def edit_table(at: AppTest, jid: str, name: str, **delta) -> None:
    """Set a data editor's edits through its key, as AppTest documents for st.data_editor."""
    version = at.session_state[f"jb.{jid}.{name}.version"]
    at.session_state[f"jb.{jid}.{name}.{version}"] = {
        "edited_rows": delta.get("edited", {}),
        "added_rows": delta.get("added", []),
        "deleted_rows": delta.get("deleted", []),
    }
    at.run()


def type_finder(at: AppTest, text: str, jid: str = "new") -> None:
    """Type into the content finder (a streamlit-keyup input, which keeps its value in the
    session under its own key) and let the pause in typing rerun the page."""
    version = at.session_state[f"jbv.{jid}.content_finder"]
    at.session_state[f"_st_keyup_jb.{jid}.content_finder.v.{version}"] = {"value": text}
    at.run()


def type_mapping(at: AppTest, rows: list[dict], jid: str = "new") -> None:
    """Type ``rows`` into the mapping grid, as the grid reports them after a pause."""
    version = at.session_state[f"jbv.{jid}.mapping"]
    at.session_state[f"jb.{jid}.mapping_grid"] = {"rows": {"version": version, "rows": rows}}
    at.run()


def go(at: AppTest, section: str) -> None:
    """Open a section of the builder (one is drawn at a time). As in a browser, where a field
    is committed before the next click, run after typing and before going."""
    at.segmented_control(key="jb_section").set_value(section).run()


BASICS, CALLS, RECORDS = "Basics", "Calls and tests", "Records and mapping"


def first_call(at: AppTest, jid: str = "new") -> str:
    return at.session_state[f"jb_uids.{jid}"][0]


def build_products_job(at: AppTest) -> str:
    go(at, BASICS)
    at.text_input(key="jb.new.name").input("Products by page").run()
    go(at, CALLS)
    uid = first_call(at)
    at.text_input(key=f"jb.new.c.{uid}.path").input("/products")
    at.selectbox(key=f"jb.new.c.{uid}.behavior").select("pagination").run()
    at.number_input(key=f"jb.new.c.{uid}.b.page_size").set_value(20).run()
    go(at, RECORDS)
    type_finder(at, "$.items")
    go(at, CALLS)
    return uid


MAPPING = [
    {"extract": "$.id", "generate": "external_id", "type": "string"},
    {"extract": "$.title", "generate": "name", "type": "string"},
    {"extract": "$.category.code", "generate": "classification_category_id", "type": "string"},
    {"extract": "$.price.amount", "generate": "brand", "type": "integer"},
]


def test_build_test_find_map_save_and_reload(conn, home):
    at = open_builder()
    uid = build_products_job(at)
    at.button(key=f"jb.new.c.{uid}.test").click().run()
    assert not at.exception
    trace = at.session_state["jb_tests"]["new"]["trace"]
    assert trace["error"] is None and len(trace["records"]) == 95
    assert any(m.startswith("**Last test** (calls 1–1") for m in texts(at, "markdown"))
    go(at, RECORDS)
    assert "**95 records** from the test of call 1" in texts(at, "markdown")

    # The content finder works on the cached responses: no request while typing.
    requests_before = len(trace["exchanges"])
    type_finder(at, "$.items[*].price")
    assert "**95 records** from the test of call 1" in texts(at, "markdown")
    type_finder(at, "$.item")
    assert any(
        w.startswith("No records at $.item. Paths that match: $.items")
        for w in texts(at, "warning")
    )
    type_finder(at, "$.items[")
    assert any(
        "ends too early (an unclosed bracket or quote?) at position 9" in e
        for e in texts(at, "error")
    )
    type_finder(at, "$.items")
    assert len(at.session_state["jb_tests"]["new"]["trace"]["exchanges"]) == requests_before

    caption = next(c for c in texts(at, "caption") if c.startswith("Required fields"))
    assert "external_id ⚠️ not mapped" in caption

    type_mapping(at, MAPPING)
    markdown = texts(at, "markdown")
    assert any(
        m.startswith("**") and "rejects**" in m and "**0 rejects**" not in m for m in markdown
    )
    rejects = next(d.value for d in at.dataframe if "reason" in getattr(d.value, "columns", []))
    assert rejects.iloc[0]["reason"].startswith("$.price.amount: ")
    assert rejects.iloc[0]["reason"].endswith("is not a whole number")
    type_mapping(at, [*MAPPING[:3], {**MAPPING[3], "type": "number"}])
    assert "**95 rows**, **0 rejects**" in texts(at, "markdown")

    at.button(key="jb_save").click().run()
    assert texts(at, "error") == [] and texts(at, "success") == ["Saved job 'Products by page'."]
    store = ConfigStore(home)
    saved = store.get("jobs", "Products by page")
    assert saved.calls[0].behavior.page_size == 20 and saved.content_finder == "$.items"
    assert [(f.extract, f.generate, f.type) for f in saved.mapping] == [
        (m["extract"], m["generate"], "number" if m["generate"] == "brand" else m["type"])
        for m in MAPPING
    ]

    # Reopened, it is exactly what was saved, and the last test is still there.
    assert at.selectbox(key="jb_pick").value == "Products by page"
    jid = saved.id
    assert at.session_state["jb_drafts"][jid] == saved.model_dump(
        mode="json", exclude={"created_at", "updated_at"}
    )
    assert "**95 rows**, **0 rejects**" in texts(at, "markdown")
    go(at, CALLS)
    uid = first_call(at, jid)
    assert at.text_input(key=f"jb.{jid}.c.{uid}.path").value == "/products"
    assert at.number_input(key=f"jb.{jid}.c.{uid}.b.page_size").value == 20

    # An unsaved edit and the test survive a visit to another page.
    go(at, BASICS)
    at.text_input(key=f"jb.{jid}.name").input("Products (renamed)").run()
    at.switch_page("views/connections.py").run()
    at.switch_page("views/jobs.py").run()
    assert at.segmented_control(key="jb_section").value == BASICS
    assert at.text_input(key=f"jb.{jid}.name").value == "Products (renamed)"
    go(at, RECORDS)
    assert "**95 records** from the test of call 1" in texts(at, "markdown")


def test_bad_inputs_show_their_message_and_save_nothing(conn, home, sandbox):
    at = open_builder()
    uid = build_products_job(at)
    # Missing required mapping.
    at.button(key="jb_save").click().run()
    assert texts(at, "error") == [
        "Mapping: required fields external_id, name, classification_category_id of Products "
        "are not mapped"
    ]
    # An invalid JSONPath in a variable.
    go(at, RECORDS)
    type_mapping(at, MAPPING[:3])
    go(at, CALLS)
    edit_table(at, "new", f"c.{uid}.variables", added=[{"name": "ids", "path": "$.items[*"}])
    at.button(key="jb_save").click().run()
    assert texts(at, "error")[0].startswith(
        "Call 1 › Variables 1 › JSONPath: JSONPath '$.items[*': ends too early"
    )
    edit_table(at, "new", f"c.{uid}.variables")  # the editor back to no rows
    at.button(key="jb_save").click().run()
    assert texts(at, "error") == []
    assert texts(at, "success") == ["Saved job 'Products by page'."]
    # A duplicate name.
    at.selectbox(key="jb_pick").select("+ New job").run()
    build_products_job(at)
    go(at, RECORDS)
    type_mapping(at, MAPPING[:3])
    at.button(key="jb_save").click().run()
    assert texts(at, "error") == [
        "Name: a job called 'Products by page' exists already (names are unique, whatever "
        "their case)"
    ]
    assert len(ConfigStore(home).list("jobs")) == 1
    # An unreachable URL: the test says so; nothing is saved by testing.
    ConfigStore(home).modify(
        "connections",
        "Sandbox",
        lambda c: c.model_copy(update={"base_url": "http://127.0.0.1:9/api", "auth": NoAuth()}),
        source="cli",
    )
    uid = first_call(at)
    go(at, CALLS)
    at.button(key=f"jb.new.c.{uid}.test").click().run()
    trace = at.session_state["jb_tests"]["new"]["trace"]
    assert "127.0.0.1:9 refused the connection" in trace["error"]
    assert any("refused the connection" in e for e in texts(at, "error"))
    assert len(ConfigStore(home).list("jobs")) == 1


def test_calls_add_move_remove_and_curl_import_with_secrets(conn, home, sandbox):
    at = open_builder()
    go(at, CALLS)
    at.text_area(key="jb.new.curl").input(
        f"curl -H 'X-API-Key: k-123' -H 'Accept: application/json' "
        f"'{sandbox.url}/api/suppliers?country=FR'"
    ).run()
    at.button(key="jb.new.curl_add").click().run()
    draft = at.session_state["jb_drafts"]["new"]
    assert len(draft["calls"]) == 1  # it took the place of the empty call a new job starts with
    uid = first_call(at)
    assert at.text_input(key=f"jb.new.c.{uid}.path").value == "/suppliers"
    assert draft["calls"][0]["query"] == [{"name": "country", "value": "FR"}]
    assert draft["calls"][0]["headers"] == [{"name": "Accept", "value": "application/json"}]
    assert any("The command sends credentials (X-API-Key)" in w for w in texts(at, "warning"))
    at.button(key="jb.new.curl_move").click().run()
    assert not at.exception
    assert texts(at, "success") == ["Moved X-API-Key into connection 'Sandbox' as secret headers."]
    stored = ConfigStore(home).get("connections", "Sandbox", reveal=True)
    assert [(h.name, h.value, h.secret) for h in stored.headers] == [("X-API-Key", "k-123", True)]
    at.text_area(key="jb.new.curl").input(f"curl '{sandbox.url}/api/products'").run()
    at.button(key="jb.new.curl_add").click().run()  # a second call, after the first
    first, second = at.session_state["jb_uids.new"]
    assert at.session_state["jb_drafts"]["new"]["calls"][1]["path"] == "/products"
    at.button(key=f"jb.new.c.{second}.up").click().run()
    assert at.session_state["jb_uids.new"] == [second, first]
    assert at.session_state["jb_drafts"]["new"]["calls"][0]["path"] == "/products"
    at.button(key=f"jb.new.c.{first}.remove").click().run()
    assert len(at.session_state["jb_drafts"]["new"]["calls"]) == 1
    at.button(key="jb.new.add_call").click().run()
    assert len(at.session_state["jb_drafts"]["new"]["calls"]) == 2
    at.text_area(key="jb.new.curl").input("curl 'https://x").run()
    at.button(key="jb.new.curl_add").click().run()
    assert "cURL command: No closing quotation (an unclosed quote?)" in texts(at, "error")


def test_list_clone_activate_disable_delete(conn, home):
    store = ConfigStore(home)
    store.create(
        "jobs",
        {
            "kind": "api",
            "name": "Suppliers",
            "connection_id": conn.id,
            "entity": "Suppliers",
            "schedule": {"type": "daily", "mode": "weekdays", "at": "06:00"},
            "calls": [{"path": "/suppliers"}],
            "content_finder": "$.suppliers",
            "mapping": [
                {"extract": "$.supplierId", "generate": "external_id"},
                {"extract": "$.companyName", "generate": "name"},
            ],
        },
        source="cli",
    )
    at = open_builder()
    listing = at.dataframe[0].value
    assert listing.iloc[0]["Schedule"] == "every weekday (Monday to Friday) at 06:00 UTC"
    assert listing.iloc[0]["Connection"] == "Sandbox"
    at.selectbox(key="jb_pick").select("Suppliers").run()
    at.button(key="jb_disable").click().run()
    assert store.get("jobs", "Suppliers").status == "disabled"
    at.button(key="jb_activate").click().run()
    assert store.get("jobs", "Suppliers").status == "active"
    at.button(key="jb_clone").click().run()
    assert at.selectbox(key="jb_pick").value == "Copy of Suppliers"
    assert store.get("jobs", "Copy of Suppliers").status == "disabled"
    at.button(key="jb_delete").click().run()
    at.button(key="jb_delete_no").click().run()
    assert len(store.list("jobs")) == 2
    at.button(key="jb_delete").click().run()
    at.button(key="jb_delete_yes").click().run()
    assert [j.name for j in store.list("jobs")] == ["Suppliers"]
    assert texts(at, "success") == ["Deleted job 'Copy of Suppliers'."]


def test_schedule_form_says_it_in_words_and_refuses_bad_cron(conn, home):
    at = open_builder()
    at.selectbox(key="jb.new.s.type").select("monthly").run()
    at.radio(key="jb.new.s.monthly.mode").set_value("last_weekday").run()
    at.text_input(key="jb.new.s.at").input("06:00").run()
    caption = next(c for c in texts(at, "caption") if c.startswith("Runs "))
    assert caption.startswith("Runs on the last weekday of every month at 06:00 UTC. Next: ")
    assert caption.count("06:00") == 6
    at.selectbox(key="jb.new.s.type").select("cron").run()
    at.text_input(key="jb.new.s.cron").input("0 25 * * *").run()
    assert "Cron expression: '0 25 * * *' is not valid: Bad hour" in texts(at, "error")


def test_field_browser_and_suggestions_fill_the_mapping(conn, home):
    at = open_builder()
    uid = build_products_job(at)
    at.number_input(key="jb.new.limit_pages").set_value(1).run()
    at.button(key=f"jb.new.c.{uid}.test").click().run()
    assert any("stopped after 1 pages: preview limit" in w for w in texts(at, "warning"))
    go(at, RECORDS)
    options = at.selectbox(key="jb.new.browse").options
    assert any(o.startswith("$.price.amount · number · ") for o in options)
    at.selectbox(key="jb.new.browse").select("$.title")
    at.selectbox(key="jb.new.browse_to").select("name").run()
    at.button(key="jb.new.browse_use").click().run()
    assert at.session_state["jb_drafts"]["new"]["mapping"] == [
        {
            "extract": "$.title",
            "generate": "name",
            "type": "string",
            "format": "",
            "default": None,
            "required": False,
        }
    ]
    at.button(key="jb.new.suggest").click().run()
    mapping = {m["generate"]: m["extract"] for m in at.session_state["jb_drafts"]["new"]["mapping"]}
    assert mapping["name"] == "$.title"  # kept what the analyst chose
    assert mapping["external_id"] == "$.id"
    assert mapping["classification_category_id"] == "$.category.code"
    assert "**20 rows**, **0 rejects**" in texts(at, "markdown")
    # The preview limits are test inputs: they survive a visit to another page.
    at.switch_page("views/connections.py").run()
    at.switch_page("views/jobs.py").run()
    go(at, CALLS)
    assert at.number_input(key="jb.new.limit_pages").value == 1


@pytest.mark.parametrize("fixture", ["ftp_server", "vsftpd_server"])
def test_a_file_job_from_an_ftp_server(home, request, fixture):
    conn, folder = server_folder(request.getfixturevalue(fixture), "ftp", name="Supplier FTP")
    (folder / "in").mkdir(parents=True, exist_ok=True)
    (folder / "in" / "suppliers.csv").write_text("id;company\nS1;Acme\nS2;Globex\n")
    store = ConfigStore(home)
    store.create("connections", conn.model_dump(), source="cli")
    at = open_builder()
    at.radio(key="jb.new.kind").set_value("file").run()
    at.text_input(key="jb.new.name").input("Suppliers from FTP").run()
    at.selectbox(key="jb.new.entity").select("Suppliers").run()
    go(at, "Files and test")
    at.text_input(key="jb.new.f.browse").input("in")
    at.button(key="jb.new.f.list").click().run()
    at.selectbox(key="jb.new.f.pick").select("in/suppliers.csv")
    at.button(key="jb.new.f.use_path").click().run()
    assert at.text_input(key="jb.new.f.path").value == "in/suppliers.csv"
    at.button(key="jb.new.f.test").click().run()
    assert not at.exception
    # The default delimiter is a comma: one column, and the studio says which one it may be.
    assert any("the delimiter may be ';' (semicolon)" in e for e in texts(at, "error"))
    assert "The first lines suggest the delimiter semicolon ;." in texts(at, "warning")
    at.button(key="jb.new.f.use_delimiter").click().run()
    at.button(key="jb.new.f.test").click().run()
    assert texts(at, "error") == []
    assert any(m.endswith("2 rows read") for m in texts(at, "markdown"))
    go(at, RECORDS)
    assert "**2 records** from the test of the file" in texts(at, "markdown")
    type_mapping(
        at,
        [
            {"extract": "id", "generate": "external_id", "type": "string"},
            {"extract": "company", "generate": "name", "type": "string"},
        ],
    )
    assert "**2 rows**, **0 rejects**" in texts(at, "markdown")
    at.button(key="jb_save").click().run()
    assert texts(at, "success") == ["Saved job 'Suppliers from FTP'."], texts(at, "error")
    saved = store.get("jobs", "Suppliers from FTP")
    assert (saved.kind, saved.source.path, saved.csv.delimiter) == ("file", "in/suppliers.csv", ";")
    assert at.session_state["jb_drafts"][saved.id] == saved.model_dump(
        mode="json", exclude={"created_at", "updated_at"}
    )


def test_behavior_forms_are_drawn_from_the_model(conn, home):
    from studio.config.jobs import PaginationBehavior, RetryBehavior

    at = open_builder()
    go(at, CALLS)
    uid = first_call(at)
    assert at.number_input(key="jb.new.max_fanout").value == 100_000  # the job's own limit
    at.selectbox(key=f"jb.new.c.{uid}.behavior").select("pagination").run()
    fields = PaginationBehavior.model_fields
    labels = {w.label for w in [*at.text_input, *at.number_input, *at.checkbox, *at.selectbox]}
    names = ("page_size", "max_pages", "page_param", "total_pages_path", "records_path")
    for name in (*names, "stop_when_empty_path"):
        assert fields[name].title in labels, name
    at.selectbox(key=f"jb.new.c.{uid}.b.style").select("cursor").run()
    labels = {w.label for w in at.text_input}
    assert fields["cursor_path"].title in labels and fields["page_param"].title not in labels
    at.selectbox(key=f"jb.new.c.{uid}.behavior").select("retry").run()
    interval = at.number_input(key=f"jb.new.c.{uid}.b.interval")
    assert interval.label == RetryBehavior.model_fields["interval"].title
    assert (interval.min, interval.max) == (0.0, 86_400.0)
    at.selectbox(key=f"jb.new.c.{uid}.behavior").select("download").run()
    from studio.config.jobs import DownloadBehavior

    source = at.text_input(key=f"jb.new.c.{uid}.b.url_source")
    assert source.help == DownloadBehavior.model_fields["url_source"].description


def test_a_test_suggests_the_content_finder_and_the_pagination(conn, home):
    at = open_builder()
    go(at, CALLS)
    uid = first_call(at)
    at.text_input(key=f"jb.new.c.{uid}.path").input("/products").run()
    at.button(key=f"jb.new.c.{uid}.test").click().run()
    labels = [b.label for b in at.button if b.key and ".suggest_" in b.key]
    assert labels[0] == "Content finder $.items (20 records)"
    assert "Pagination: page, as $.total_pages gives the number of pages" in labels
    at.button(key="jb.new.suggest_finder.0").click().run()
    assert at.session_state["jb_drafts"]["new"]["content_finder"] == "$.items"
    paging = labels.index("Pagination: page, as $.total_pages gives the number of pages")
    at.button(key=f"jb.new.suggest_paging.{paging - 1}").click().run()
    behavior = at.session_state["jb_drafts"]["new"]["calls"][0]["behavior"]
    assert (behavior["type"], behavior["total_pages_path"]) == ("pagination", "$.total_pages")
    assert at.selectbox(key=f"jb.new.c.{uid}.behavior").value == "pagination"


def test_a_long_test_shows_its_progress_and_can_be_cancelled(conn, home):
    at = open_builder()
    go(at, CALLS)
    uid = first_call(at)
    at.text_input(key=f"jb.new.c.{uid}.path").input("/products?slow=0.4")
    at.selectbox(key=f"jb.new.c.{uid}.behavior").select("pagination").run()
    at.number_input(key=f"jb.new.c.{uid}.b.page_size").set_value(5).run()
    type_finder(at, "$.items")  # beside the calls: set before the first test
    at.button(key=f"jb.new.c.{uid}.test").click().run()
    progress = next(m for m in texts(at, "markdown") if m.startswith("**Testing call 1…**"))
    assert " page" in progress and " s" in progress
    # The analyst can go on typing while it runs.
    type_finder(at, "$.item")
    assert at.session_state["jb_drafts"]["new"]["content_finder"] == "$.item"
    type_finder(at, "$.items")
    at.button(key="jb.new.cancel").click().run()
    for _ in range(40):
        if "jb.new.task" not in at.session_state:
            break
        time.sleep(0.25)
        at.run()
    warnings = texts(at, "warning")
    assert any(w.startswith("Cancelled: the test was stopped after ") for w in warnings), warnings
    trace = at.session_state["jb_tests"]["new"]["trace"]
    assert 0 < len(trace["records"]) < 95
    assert any(
        m.startswith(f"**{len(trace['records'])} records** at $.items")
        for m in texts(at, "markdown")
    )


def reopen(query: dict) -> AppTest:
    """The builder in a new browser session (a reload, a second tab) at a URL's query."""
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60)
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    at.switch_page("views/jobs.py").run()
    assert not at.exception, at.exception
    return at


def test_a_draft_survives_a_reload_and_a_second_tab_until_discarded(conn, home):
    at = open_builder()
    uid = build_products_job(at)
    at.button(key=f"jb.new.c.{uid}.test").click().run()
    go(at, RECORDS)
    type_mapping(at, MAPPING[:2])
    key = at.query_params["draft"]
    assert key.startswith("new-")
    assert any("Unsaved changes" in m for m in texts(at, "markdown"))

    tab = reopen({"draft": key})  # what a reload finds: everything typed, and the last test
    draft = tab.session_state["jb_drafts"]["new"]
    assert draft["name"] == "Products by page" and draft["content_finder"] == "$.items"
    assert [m["generate"] for m in draft["mapping"]] == ["external_id", "name"]
    assert draft["calls"][0]["behavior"]["page_size"] == 20
    assert any("Unsaved changes" in m for m in texts(tab, "markdown"))
    go(tab, RECORDS)
    assert "**95 records** from the test of call 1" in texts(tab, "markdown")

    tab.button(key="jb_discard").click().run()
    assert tab.session_state["jb_drafts"]["new"]["name"] == ""
    assert not any("Unsaved changes" in m for m in texts(tab, "markdown"))
    assert reopen({"draft": key}).session_state["jb_drafts"]["new"]["name"] == ""


def test_a_saved_job_reopens_with_its_unsaved_changes_marked(conn, home):
    at = open_builder()
    build_products_job(at)
    go(at, RECORDS)
    type_mapping(at, MAPPING[:3])
    at.button(key="jb_save").click().run()
    store = ConfigStore(home)
    job = store.get("jobs", "Products by page")
    assert at.query_params["job"] == job.id
    assert not any("Unsaved changes" in m for m in texts(at, "markdown"))
    go(at, CALLS)
    at.number_input(key=f"jb.{job.id}.limit_pages").set_value(2).run()
    go(at, BASICS)
    at.text_input(key=f"jb.{job.id}.name").input("Products, renamed").run()
    assert any("Unsaved changes" in m for m in texts(at, "markdown"))

    link = {"job": job.id, "draft": at.query_params["draft"]}
    assert link["draft"].startswith("job-")
    tab = reopen(link)  # a reload, or a second tab on the same link
    assert tab.session_state["jb_drafts"][job.id]["name"] == "Products, renamed"
    assert any("Unsaved changes" in m for m in texts(tab, "markdown"))
    # Someone else opening the job (no draft in their link) gets the saved job, a draft of
    # their own, and never this one.
    other = reopen({"job": job.id})
    assert other.session_state["jb_drafts"][job.id]["name"] == "Products by page"
    assert other.query_params["draft"] != link["draft"]
    assert not any("Unsaved changes" in m for m in texts(other, "markdown"))
    # Saved elsewhere meanwhile (the CLI, the API, a colleague): the draft says so.
    store.modify(
        "jobs", job.id, lambda j: j.model_copy(update={"status": "disabled"}), source="cli"
    )
    tab = reopen(link)
    assert any(w.startswith("This job was saved elsewhere") for w in texts(tab, "warning"))
    tab.button(key="jb_discard").click().run()
    assert tab.session_state["jb_drafts"][job.id]["name"] == "Products by page"
    assert not any("Unsaved changes" in m for m in texts(tab, "markdown"))
    # The preview limits are the job's test inputs: they outlive the draft.
    go(tab, CALLS)
    assert tab.number_input(key=f"jb.{job.id}.limit_pages").value == 2


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def test_problems_show_beside_their_fields_and_at_save(conn, home):
    at = open_builder()
    go(at, BASICS)
    assert not any(c.startswith(":red[") for c in captions(at))  # an empty job is not a wall
    at.button(key="jb_save").click().run()
    assert "Name: must not be empty" in texts(at, "error")  # at Save …
    assert ":red[must not be empty]" in captions(at)  # … and under the name, once tried
    at.text_input(key="jb.new.name").input("Inline").run()
    assert ":red[must not be empty]" not in captions(at)
    assert "Name: must not be empty" not in texts(at, "error")  # fixed: gone at Save too
    at.selectbox(key="jb.new.s.type").select("cron").run()
    at.text_input(key="jb.new.s.cron").input("0 6 * *").run()
    assert any(c.startswith(":red['0 6 * *' is not valid") for c in captions(at))
    go(at, CALLS)
    uid = first_call(at)
    at.text_input(key=f"jb.new.c.{uid}.path").input("/products")
    at.selectbox(key=f"jb.new.c.{uid}.behavior").select("pagination").run()
    at.text_input(key=f"jb.new.c.{uid}.b.total_pages_path").input("$.total[").run()
    assert any(c.startswith(":red[JSONPath '$.total[': ends too early") for c in captions(at))


def test_run_now_in_the_editor_reports_the_run_until_it_ends(conn, home):
    store = ConfigStore(home)
    job = store.create(
        "jobs",
        {
            "kind": "api",
            "name": "Slow products",
            "connection_id": conn.id,
            "entity": "Products",
            "calls": [
                {
                    "path": "/products",
                    "query": [{"name": "slow", "value": "0.3"}],
                    "behavior": {"type": "pagination", "page_size": 20},
                }
            ],
            "content_finder": "$.items",
            "mapping": MAPPING[:3],
        },
        source="cli",
    )
    at = reopen({"job": job.id})
    assert "Not run yet." in captions(at)
    at.button(key="jb_run_now").click().run()
    last = next(m for m in texts(at, "markdown") if m.startswith("**Last run**"))
    assert "manual): **running** · so far: " in last
    for _ in range(60):
        if any(t.value.startswith("Run of 'Slow products' finished") for t in at.toast):
            break
        time.sleep(0.25)
        at.run()
    assert [t.value for t in at.toast] == ["Run of 'Slow products' finished: success, 95 rows"]
    last = next(m for m in texts(at, "markdown") if m.startswith("**Last run**"))
    assert "**success** · 95 records, 95 rows written" in last


def test_the_preview_follows_the_entity_and_refuses_its_unknown_fields(conn, home):
    at = open_builder()
    uid = build_products_job(at)
    at.button(key=f"jb.new.c.{uid}.test").click().run()
    go(at, RECORDS)
    type_mapping(at, [*MAPPING[:3], {"extract": "$.stock", "generate": "quantity"}])
    # "quantity" is no field of Products: refused with a reason, never replaced by another.
    mapping = at.session_state["jb_drafts"]["new"]["mapping"]
    assert [m["generate"] for m in mapping][-1] == "quantity"
    rows = next(f.value for f in at.dataframe if "external_id" in f.value.columns)
    assert list(rows.columns) == ["external_id", "name", "classification_category_id"]
    assert "**95 rows**, **0 rejects**" in texts(at, "markdown")
    go(at, BASICS)
    at.selectbox(key="jb.new.entity").select("Suppliers").run()
    go(at, RECORDS)
    assert at.session_state["jb_drafts"]["new"]["entity"] == "Suppliers"
    rows = next(f.value for f in at.dataframe if "external_id" in f.value.columns)
    assert list(rows.columns) == ["external_id", "name"]  # Suppliers has no category
    assert any(m.startswith("Mapping to Suppliers") for m in [h.value for h in at.subheader])
    required = next(c for c in captions(at) if c.startswith("Required fields of Suppliers"))
    assert required == "Required fields of Suppliers: external_id ✓, name ✓"
    at.button(key="jb_save").click().run()
    assert any(
        e.startswith("Mapping 3 › Generate: 'classification_category_id' is not a field of")
        for e in texts(at, "error")
    )


def test_two_tabs_on_one_link_never_write_over_each_other_unasked(conn, home):
    at = open_builder()
    go(at, BASICS)
    at.text_input(key="jb.new.name").input("First tab").run()
    link = {"draft": at.query_params["draft"]}
    second = reopen(link)
    assert second.session_state["jb_drafts"]["new"]["name"] == "First tab"
    at.text_input(key="jb.new.name").input("First tab, again").run()  # the first tab goes on
    second.text_input(key="jb.new.name").input("Second tab").run()
    assert any(
        w.startswith("This draft was changed in another tab") for w in texts(second, "warning")
    )
    assert reopen(link).session_state["jb_drafts"]["new"]["name"] == "First tab, again"
    second.button(key="jb_keep_mine").click().run()
    assert reopen(link).session_state["jb_drafts"]["new"]["name"] == "Second tab"
    at.text_input(key="jb.new.name").input("First tab, once more").run()
    assert any(w.startswith("This draft was changed in another tab") for w in texts(at, "warning"))
    at.button(key="jb_take_theirs").click().run()
    assert at.session_state["jb_drafts"]["new"]["name"] == "Second tab"


def test_an_untouched_new_job_is_not_unsaved_and_keeps_no_draft(conn, home):
    at = open_builder()
    for section in (BASICS, CALLS, RECORDS, BASICS):
        go(at, section)
        assert not any("Unsaved changes" in m for m in texts(at, "markdown")), section
    assert not list((home / "drafts").glob("new-*.json"))


def test_a_second_test_or_a_discard_cancels_the_running_test(conn, home):
    at = open_builder()
    go(at, CALLS)
    uid = first_call(at)
    at.text_input(key=f"jb.new.c.{uid}.path").input("/products?slow=0.4")
    at.selectbox(key=f"jb.new.c.{uid}.behavior").select("pagination").run()
    at.number_input(key=f"jb.new.c.{uid}.b.page_size").set_value(5).run()
    type_finder(at, "$.items")
    at.button(key=f"jb.new.c.{uid}.test").click().run()
    first = at.session_state["jb.new.task"]
    at.run()
    assert at.button(key=f"jb.new.c.{uid}.test").disabled  # one test at a time
    go(at, BASICS)
    at.text_input(key="jb.new.name").input("To discard").run()
    at.button(key="jb_discard").click().run()
    assert first.cancelled and first.wait(10)
    assert "jb.new.task" not in at.session_state


def test_lookups_templates_and_a_new_field_from_the_mapping(conn, home):
    at = open_builder()
    uid = build_products_job(at)
    at.button(key=f"jb.new.c.{uid}.test").click().run()
    go(at, RECORDS)
    at.button(key="jb.new.lookup_add").click().run()
    at.text_input(key="jb.new.lk.0.name").input("categories").run()
    at.selectbox(key="jb.new.lk.0.on_miss").select("keep").run()
    edit_table(at, "new", "lookup.0", added=[{"value": "cat-1", "becomes": "Shoes"}])
    assert at.session_state["jb_drafts"]["new"]["lookups"] == [
        {"name": "categories", "map": {"cat-1": "Shoes"}, "on_miss": "keep", "default": None}
    ]
    rows = [
        {"extract": "$.id", "generate": "external_id"},
        {"template": "{{ title | upper }} ({{ stock }})", "generate": "name"},
        {
            "extract": "$.category.code",
            "generate": "classification_category_id",
            "lookup": "categories",
        },
        {"extract": "$.stock", "generate": "stock", "type": "integer"},
    ]
    type_mapping(at, rows)
    preview = next(f.value for f in at.dataframe if "external_id" in f.value.columns)
    assert list(preview.columns) == ["external_id", "name", "classification_category_id"]
    assert preview.iloc[0]["name"] == "PRODUCT 1 (13)"
    assert preview.iloc[0]["classification_category_id"] == "Shoes"
    assert preview.iloc[1]["classification_category_id"] == "cat-2"  # kept: not in the map
    # "stock" is not a field of Products: offered, and added once confirmed.
    at.button(key="jb.new.add_field.stock").click().run()
    assert ConfigStore(home).entities()["Products"].fields["stock"].type == "integer"
    preview = next(f.value for f in at.dataframe if "external_id" in f.value.columns)
    assert preview.iloc[0]["stock"] == 13
    at.button(key="jb_save").click().run()
    assert texts(at, "success") == ["Saved job 'Products by page'."], texts(at, "error")
    saved = ConfigStore(home).get("jobs", "Products by page")
    assert saved.lookups[0].map == {"cat-1": "Shoes"} and saved.mapping[1].template


def test_a_nested_array_maps_to_a_second_entity_with_both_tables_previewed(conn, home):
    at = open_builder()
    go(at, CALLS)
    uid = first_call(at)
    at.text_input(key=f"jb.new.c.{uid}.path").input("/products-variants").run()
    type_finder(at, "$.items")
    at.button(key=f"jb.new.c.{uid}.test").click().run()
    go(at, RECORDS)
    type_mapping(at, MAPPING[:3])
    at.button(key="jb.new.child_add").click().run()
    at.session_state["_st_keyup_jb.new.ch.0.path.v.0"] = {"value": "$.variants[*]"}
    at.run()
    at.selectbox(key="jb.new.ch.0.parent_key").select("product_external_id").run()
    variant = [
        {"extract": "$.id", "generate": "external_id"},
        {"extract": "$.sku", "generate": "sku"},
        {"extract": "$.color", "generate": "color"},
    ]
    at.session_state["jb.new.ch0_grid"] = {"rows": {"version": 0, "rows": variant}}
    at.run()
    assert not at.exception
    markdown = texts(at, "markdown")
    assert "**20 rows**, **1 reject**" in markdown  # product 7's second variant has no sku
    assert "**Variants: 40 rows**" in markdown  # 41 variants on the first page, one rejected
    child = next(f.value for f in at.dataframe if "product_external_id" in f.value.columns)
    assert child.iloc[0].to_dict() == {
        "external_id": "P00001-1",
        "sku": "SKU-00001-1",
        "color": "red",
        "product_external_id": "P00001",
    }
    at.button(key="jb_save").click().run()
    assert texts(at, "success") == ["Saved job 'draft'."] or texts(at, "error")
    children = (
        at.session_state["jb_drafts"]["new"]["children"]
        if "new" in at.session_state["jb_drafts"]
        else None
    )
    assert children is None or children[0]["parent_key"] == "product_external_id"
