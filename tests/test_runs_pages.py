"""The Overview, Runs and Data pages, through AppTest, on runs made against the sandbox."""

from __future__ import annotations

from studio.runhistory import RunHistory
from studio.runs import run_job
from tests.helpers import (
    PRODUCTS,
    demo,
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
    at = page("pages/runs.py")
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
    at = page("pages/data.py")
    assert at.caption[0].value == "95 products rows · page 1 of 1" or at.caption[0].value == (
        "95 products rows"
    )
    frame = at.dataframe[0].value
    assert len(frame) == 95 and set(frame["last run"]) == {run.id}
    at.text_input(key="data_filter").input("P00042").run()
    assert at.caption[0].value == "1 products rows matching 'P00042'"
    at.selectbox(key="data_entity").select("Offers").run()
    assert at.info[0].value == "No rows yet: run an import job of this entity."


def test_settings_lists_api_tokens_without_the_tokens(store):
    from studio.apitokens import create_token

    token = create_token(store, "erp")
    at = page("pages/settings.py")
    tokens = at.dataframe[0].value
    assert tokens.iloc[0]["Name"] == "erp" and tokens.iloc[0]["Starts with"] == token[:7] + "…"
    assert token not in str(tokens.to_dict())


def test_runs_page_counts_every_attempt(store, sandbox):
    demo(store, sandbox)
    sandbox.fault("/api/products", 503, times=2, retry_after="0")
    run_job(store, "Demo products (page numbers)")
    at = page("pages/runs.py")
    row = at.dataframe[0].value.iloc[0]
    assert (row["Requests"], row["Attempts"], row["Files read"]) == (6, 8, 0)
    requests = next(m for m in at.metric if m.label == "Requests")
    assert (requests.value, requests.delta) == ("6", "8 attempts")
    assert at.caption[0].value == (
        "95 records, 95 rows written, 0 rejected, 6 requests, 8 attempts, 5 pages"
    )


def test_a_running_run_shows_its_counts_so_far_on_the_runs_page_and_overview(store, sandbox):
    import threading

    demo(store, sandbox)
    slow_products(store, 1)
    history = RunHistory(store.home)
    claimed = history.start_run("demojobproducts1", PRODUCTS, "manual")
    thread = threading.Thread(target=run_job, args=(store, PRODUCTS), kwargs={"run": claimed})
    thread.start()
    try:
        assert watch(history, claimed.id, lambda r: r.records > 0).status == "running"
        at = page("pages/runs.py")
        assert at.caption[0].value.startswith("So far: ")
        assert not at.caption[0].value.startswith("So far: 0 records")
        assert int(next(m for m in at.metric if m.label == "Records").value) > 0
        overview = page("")
        live = overview.dataframe[1].value.iloc[0]
        assert (live["Job"], live["Status"]) == (PRODUCTS, "running")
        assert not live["So far"].startswith("0 records")
    finally:
        thread.join(timeout=60)
    assert history.get(claimed.id).status == "success"


def test_settings_creates_a_token_shown_once_and_revokes_it(store):
    from studio.apitokens import verify

    at = page("pages/settings.py")
    at.text_input(key="token_name").input("erp")
    at.button[0].click().run()  # the form's submit
    [made] = [c.value for c in at.code]
    assert verify(store, made) == "erp"
    assert "Copy it now: it is not shown again." in at.success[0].value
    at.run()  # any rerun: the token is gone from the page
    assert not at.code and at.dataframe[0].value.iloc[0]["Name"] == "erp"
    at.selectbox(key="token_pick").select("erp")
    at.button[1].click().run()
    assert store.list("api_tokens") == [] and verify(store, made) is None
