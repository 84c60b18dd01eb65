"""The Entities page, through AppTest: entities of one's own, fields added to a built-in one,
and a change refused while imported data needs what it would remove."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from studio.config.store import ConfigStore
from tests.helpers import ROOT


def open_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60).run()
    at.switch_page("views/entities.py").run()
    assert not at.exception, at.exception
    return at


def fill_fields(at: AppTest, key: str, rows: list[dict]) -> None:
    at.session_state[f"{key}.fields"] = {"edited_rows": {}, "added_rows": rows, "deleted_rows": []}


def submit(at: AppTest, label: str) -> None:
    next(b for b in at.button if b.label == label).click().run()


def test_an_entity_of_ones_own_is_created_listed_and_refused_when_wrong(home):
    at = open_page()
    kinds = dict(zip(at.dataframe[0].value["Entity"], at.dataframe[0].value["Kind"], strict=True))
    assert kinds["Products"] == "built-in"
    at.text_input(key="en.+ New entity.name").input("Feed items")
    at.text_input(key="en.+ New entity.key").input("sku")
    fill_fields(at, "en.+ New entity", [{"name": "id", "type": "string", "required": True}])
    submit(at, "Create")
    assert any("Key field: 'sku' is not one of id" in e.value for e in at.error)
    assert ConfigStore(home).list("entities") == []
    at.text_input(key="en.+ New entity.key").input("id")
    fill_fields(
        at,
        "en.+ New entity",
        [
            {"name": "id", "type": "string", "required": True},
            {"name": "stock", "type": "integer", "required": False},
        ],
    )
    submit(at, "Create")
    assert [s.value for s in at.success] == ["Saved entity 'Feed items'."]
    feed = ConfigStore(home).entities()["Feed items"]
    assert (feed.key, feed.fields["stock"].type, feed.fields["stock"].required) == (
        "id",
        "integer",
        False,
    )
    kinds = dict(zip(at.dataframe[0].value["Entity"], at.dataframe[0].value["Kind"], strict=True))
    assert kinds["Feed items"] == "custom"


def test_fields_of_ones_own_on_a_built_in_entity(home):
    at = open_page()
    at.selectbox(key="en_pick").select("Offers").run()
    fill_fields(at, "en.Offers", [{"name": "lead_time", "type": "integer"}])
    submit(at, "Create")
    assert [s.value for s in at.success] == ["Saved entity 'Offers'."]
    assert ConfigStore(home).entities()["Offers"].fields["lead_time"].type == "integer"
    kinds = dict(zip(at.dataframe[0].value["Entity"], at.dataframe[0].value["Kind"], strict=True))
    assert kinds["Offers"] == "built-in + custom fields"
    next(b for b in at.button if b.label == "Delete").click().run()
    assert "lead_time" not in ConfigStore(home).entities()["Offers"].fields
