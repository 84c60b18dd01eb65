"""The Overview, Runs and Data pages, through AppTest, on runs made against the sandbox."""

from __future__ import annotations

from studio.runhistory import RunHistory
from studio.runs import run_job, start_in_background
from tests.helpers import (
    PRODUCTS,
    SUPPLIERS,
    demo,
    oauth,
    page,
    reject_every_product,
    slow_products,
    wait_for,
    watch,
)


def test_overview_says_the_runner_is_down_and_shows_jobs_and_failures(store, sandbox):
    demo(store, sandbox)
    run_job(store, "Demo suppliers")
    sandbox.fault("/api/suppliers", 404, times=3, body="gone")
    run_job(store, "Demo suppliers")
    at = page("")
    assert at.warning[0].value.startswith("The runner is down")
    assert [m.value for m in at.metric][:2] == ["3", "3"]
    jobs = at.dataframe[0].value
    row = jobs[jobs["Job"] == "Demo suppliers"].iloc[0]
    assert row["Last run"] == "failed" and row["Schedule"] == "every hour and 30 minutes"
    failures = at.dataframe[1].value
    assert "answered 404 Not Found" in failures.iloc[0]["Error"]


def test_runs_page_filters_details_downloads_and_runs_now(store, sandbox):
    demo(store, sandbox)
    reject_every_product(store)
    run = run_job(store, "Demo products (page numbers)")
    at = page("views/runs.py")
    assert at.dataframe[0].value.iloc[0]["Status"] == "partial"
    assert at.selectbox(key="runs_pick").value == run.id
    assert [m.value for m in at.metric][:3] == ["95", "0", "95"]
    assert at.get("download_button")[0].proto.label == f"Download run-{run.id}.zip"
    rejects = at.dataframe[1].value
    assert list(rejects.columns) == ["record", "field", "reason"] and len(rejects) == 95
    at.multiselect(key="runs_status").select("failed").run()
    assert at.info[0].value == "No run matches these filters."
    at.multiselect(key="runs_status").unselect("failed").run()
    at.selectbox(key="runs_now_job").select(
        next(j.id for j in store.list("jobs") if j.name == "Demo suppliers")
    ).run()
    at.button(key="runs_now").click().run()
    assert at.success[0].value == "Started 'Demo suppliers'."

    def ended():
        done = [r for r in RunHistory(store.home).list() if r.job_name == "Demo suppliers"]
        return done if done and done[0].status != "running" else None

    done = wait_for(ended, 20, "the run started from the Runs page to end", interval=0.1)
    assert done[0].status == "success" and done[0].trigger == "manual"


def test_data_page_pages_and_filters_rows(store, sandbox):
    demo(store, sandbox)
    run = run_job(store, "Demo products (page numbers)")
    at = page("views/data.py")
    assert at.caption[0].value == "95 rows in Products"
    frame = at.dataframe[0].value
    assert len(frame) == 95 and set(frame["last run"]) == {run.id}
    assert not frame.isna().any().any() and (frame["classification_category_id"] != "").all()
    assert (frame["brand"] == "").all()  # a field the job does not fill: blank, not None
    at.text_input(key="data_filter").input("P00042").run()
    assert at.caption[0].value == "1 row in Products matching 'P00042'"
    at.selectbox(key="data_entity").select("Offers").run()
    assert at.info[0].value == "No rows yet: run an import job of this entity."


def test_settings_lists_api_tokens_without_the_tokens(store):
    from studio.apitokens import create_token

    token = create_token(store, "erp")
    at = page("views/settings.py")
    tokens = at.dataframe[0].value
    assert tokens.iloc[0]["Name"] == "erp" and tokens.iloc[0]["Starts with"] == token[:7] + "…"
    assert token not in str(tokens.to_dict())


def test_runs_page_counts_every_attempt(store, sandbox):
    demo(store, sandbox)
    sandbox.fault("/api/products", 503, times=2, retry_after="0")
    run_job(store, "Demo products (page numbers)")
    at = page("views/runs.py")
    row = at.dataframe[0].value.iloc[0]
    assert (row["Requests"], row["Attempts"], row["Files read"]) == (6, 8, 0)
    requests = next(m for m in at.metric if m.label == "Requests")
    assert (requests.value, requests.delta) == ("6", "8 attempts")
    assert at.caption[0].value == (
        "95 records, 95 rows written, 0 rejected, 6 requests, 8 attempts, 5 pages"
    )


def test_a_running_run_shows_its_counts_so_far_on_the_runs_page_and_overview(store, sandbox):
    demo(store, sandbox)
    slow_products(store, 1)
    history = RunHistory(store.home)
    claimed = start_in_background(store, PRODUCTS)
    try:
        assert watch(history, claimed.id, lambda r: r.records > 0).status == "running"
        at = page("views/runs.py")
        assert at.caption[0].value.startswith("So far: ")
        assert not at.caption[0].value.startswith("So far: 0 records")
        assert int(next(m for m in at.metric if m.label == "Records").value) > 0
        overview = page("")
        live = overview.dataframe[1].value.iloc[0]
        assert (live["Job"], live["Status"]) == (PRODUCTS, "running")
        assert not live["So far"].startswith("0 records")
    finally:
        ended = watch(history, claimed.id, lambda r: r.status not in ("queued", "running"))
    assert ended.status == "success"


def test_settings_creates_a_token_shown_once_and_revokes_it(store):
    from studio.apitokens import verify

    at = page("views/settings.py")
    at.text_input(key="token_name").input("erp")
    button(at, "Create token").click().run()
    [made] = [c.value for c in at.code]
    assert verify(store, made).name == "erp"  # no users yet: it acts for nobody in particular
    assert "Copy it now: it is not shown again." in at.success[0].value
    at.run()  # any rerun: the token is gone from the page
    assert not at.code and at.dataframe[0].value.iloc[0]["Name"] == "erp"
    at.selectbox(key="token_pick").select("erp")
    button(at, "Revoke").click().run()
    assert store.list("api_tokens") == [] and verify(store, made) is None


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


# --- a page that reports runs by itself (issue 14, item 4) ------------------------------------


def _ended(at) -> list[str]:
    return [t.value for t in at.toast]


def _live_until_toast(at, timeout: float = 60) -> tuple[list[str], list]:
    """Rerun the page, as its fragment does every second, until a toast says a run ended; the
    toasts and every table shown on the way."""
    tables = []

    def toasted():
        at.run()
        assert not at.exception, at.exception
        tables.append(at.dataframe[0].value.iloc[0].to_dict())
        return _ended(at)

    return wait_for(toasted, timeout, "a toast saying the run ended", interval=0.2), tables


def test_runs_page_shows_a_run_from_run_now_to_its_end_with_a_toast(store, sandbox):
    demo(store, sandbox)
    slow_products(store, 0.4)  # 5 pages: 2 s or more
    at = page("views/runs.py")
    assert at.info[0].value == "No run yet." and not at.toast
    at.selectbox(key="runs_now_job").select("demojobproducts1").run()
    at.button(key="runs_now").click().run()
    assert at.success[0].value == f"Started {PRODUCTS!r}."
    first = at.dataframe[0].value.iloc[0]
    assert (first["Job"], first["Status"], first["Error"]) == (PRODUCTS, "running", "")
    toasts, tables = _live_until_toast(at)
    assert toasts == [f"Run of {PRODUCTS!r} finished: success, 95 rows"]
    # on the way, the table showed the counts growing, without a visit to another page
    counts = [t["Records"] for t in tables if t["Status"] == "running"]
    assert any(0 < c < 95 for c in counts), tables
    last = at.dataframe[0].value.iloc[0]
    assert (last["Status"], last["Records"], last["Rows"], last["Error"]) == (
        "success",
        95,
        95,
        "",
    )
    assert at.subheader[0].value == f"{PRODUCTS} · success"
    at.run()  # told once
    assert not at.toast


def test_runs_page_toasts_a_failed_run_and_refuses_a_second_run_now(store, sandbox):
    demo(store, sandbox)
    slow_products(store, 0.4)
    at = page("views/runs.py")
    at.selectbox(key="runs_now_job").select("demojobproducts1").run()
    at.button(key="runs_now").click().run()
    at.button(key="runs_now").click().run()  # the same job again, while it runs
    assert "is already running" in at.warning[0].value
    assert "a job never runs twice at once" in at.warning[0].value
    sandbox.fault("/api/suppliers", 404, times=3, body="gone")
    at.selectbox(key="runs_now_job").select("demojobsupplier1").run()
    at.button(key="runs_now").click().run()
    toasts = set()
    while len(toasts) < 2:
        found, _ = _live_until_toast(at)
        toasts |= set(found)
    failed = next(t for t in toasts if "suppliers" in t)
    assert failed.startswith("Run of 'Demo suppliers' failed: ") and "404" in failed
    assert f"Run of {PRODUCTS!r} finished: success, 95 rows" in toasts


def test_runs_page_log_is_a_timeline(store, sandbox):
    demo(store, sandbox)
    run = run_job(store, PRODUCTS)
    at = page("views/runs.py")
    log = next(d.value for d in at.dataframe if "Step" in d.value.columns)
    assert list(log.columns) == ["Time (UTC)", "Step", "Message"]
    assert not log.isna().any().any() and "None" not in log.to_string()
    assert log["Time (UTC)"].str.fullmatch(r"\d\d:\d\d:\d\d").all()
    steps = log["Step"].tolist()
    assert steps.count("request") == 6 and steps.count("page") == 5  # the token and 5 pages
    assert f"{sandbox.url}/api/products?since=&page=1&size=20 → 200" in log["Message"][1]
    assert log["Message"][2] == "Call 1 (Products): 20 records"
    assert (steps[-1], log["Message"].iloc[-1]) == (
        "stop",
        "Call 1 (Products): stopped after 5 page(s): a short page (15 of 20 records)",
    )
    assert run.status == "success"


def test_overview_runs_and_toast_have_no_none_and_say_one_record(store, sandbox):
    demo(store, sandbox)
    sandbox.settings(products=1)
    overview = page("")
    jobs = overview.dataframe[0].value
    assert not jobs.isna().any().any() and "None" not in jobs.to_string()
    assert jobs[jobs["Status"] == "disabled"].iloc[0]["Next run (UTC)"] == ""
    at = page("views/runs.py")
    at.selectbox(key="runs_now_job").select("demojobproducts1").run()
    at.button(key="runs_now").click().run()
    toasts, _ = _live_until_toast(at)
    assert toasts == [f"Run of {PRODUCTS!r} finished: success, 1 row"]
    assert at.dataframe[0].value.iloc[0]["Error"] == ""
    assert not at.dataframe[0].value.isna().any().any()
    assert at.caption[0].value == "1 record, 1 row written, 0 rejected, 2 requests, 1 page"


def test_data_page_opens_on_the_entity_just_imported(store, sandbox):
    demo(store, sandbox)
    run_job(store, PRODUCTS)
    run_job(store, "Demo suppliers")
    at = page("views/data.py")
    assert at.selectbox(key="data_entity").value == "Suppliers"
    assert at.caption[0].value == "4 rows in Suppliers"
    at.selectbox(key="data_entity").select("Products").run()  # the user's pick stays
    at.text_input(key="data_filter").input("P0004").run()
    assert at.caption[0].value == "10 rows in Products matching 'P0004'"


def test_overview_onboarding_until_a_job_of_ones_own_has_run(store, sandbox):
    def steps(at) -> list[tuple[str, bool]]:
        return [
            (link.value.split(" (")[0], link.proto.icon == ":material/check_circle:")
            for link in at.page_link
            if link.value.startswith("Step ")
        ]

    at = page("")
    assert steps(at) == [
        ("Step 1 · Connect", False),
        ("Step 2 · Build an import job", False),
        ("Step 3 · Schedule it", False),
    ]
    assert [link.proto.page for link in at.page_link][:3] == ["connections", "jobs", "jobs"]
    demo(store, sandbox)
    run_job(store, "Demo suppliers")  # the demo is there to try: not a step done
    at = page("")
    assert [done for _, done in steps(at)] == [False, False, False]
    assert "The demo connection and jobs are there to try" in at.caption[0].value
    mine = {"kind": "api", "name": "Mine", "base_url": f"{sandbox.url}/api", "auth": oauth(sandbox)}
    store.create("connections", mine, source="cli")
    job = {**SUPPLIERS, "name": "My suppliers", "calls": [{"path": "/suppliers"}]}
    store.create("jobs", {**job, "connection_id": "Mine"}, source="cli")
    assert [done for _, done in steps(page(""))] == [True, True, True]
    run_job(store, "My suppliers")
    at = page("")
    assert steps(at) == [] and at.dataframe[0].value["Job"].tolist()[-1] == "My suppliers"
