"""Documents through the web: the admin import and list, and the sources every door shows with an answer."""

import json

import pytest

from tests.conftest import store_question
from web import create_app

KEY = "s3cret-admin-key"
REFUNDS = {"name": "billing/refunds.md", "text": "# Refunds\n\nYou can ask for a refund within 30 days."}
SOURCES = [{"document": "billing/refunds.md", "excerpt": "You can ask for a refund within 30 days.", "score": 0.81}]


@pytest.fixture
def admin_app(config):
    app = create_app({**config, "api_key": KEY})
    yield app
    app.extensions["precache"].close()


def post(app, body, key=KEY):
    return app.test_client().post("/v1/admin/documents", json=body, headers={"X-API-Key": key})


def test_documents_are_imported_listed_and_replaced_through_the_admin_api(admin_app):
    assert post(admin_app, {"documents": [REFUNDS]}, key="wrong").status_code == 401
    first = post(admin_app, {"documents": [REFUNDS, {"name": "shipping.md", "text": "Shipping takes 3 days."}]})
    assert first.status_code == 200
    assert (sorted(first.json["added"]), first.json["passages"]) == (["billing/refunds.md", "shipping.md"], 2)
    changed = post(admin_app, {"documents": [{**REFUNDS, "text": "Refunds within 14 days."}], "prune": True})
    assert (changed.json["updated"], changed.json["removed"]) == (["billing/refunds.md"], ["shipping.md"])
    listed = admin_app.test_client().get("/v1/admin/documents", headers={"X-API-Key": KEY}).json["documents"]
    assert [(d["name"], d["passages"]) for d in listed] == [("billing/refunds.md", 1)]


@pytest.mark.parametrize("body, says", [
    ({}, "documents: send a non-empty list"),
    ({"documents": [{"name": "a.md"}]}, "documents[0]: send {\"name\""),
    ({"documents": [{"name": "a.md", "text": "   "}]}, "documents[0]"),
    ({"documents": [REFUNDS, REFUNDS]}, "each name once"),
    ({"documents": [REFUNDS], "prune": "yes"}, "prune: true or false"),
])
def test_a_bad_import_is_refused_with_what_to_fix_and_nothing_is_imported(admin_app, body, says):
    response = post(admin_app, body)
    assert response.status_code == 400 and says in response.json["error"]["message"]
    assert admin_app.test_client().get("/v1/admin/documents", headers={"X-API-Key": KEY}).json["documents"] == []


def grounded_answer(app, question: str) -> dict:
    ctx = app.extensions["precache"]
    question_id, _ = store_question(ctx, question)
    return ctx.store.save_answer(question_id, "Within 30 days.", grounding="grounded", sources=SOURCES, quality=0.9)


def test_ask_job_and_chat_carry_the_sources_of_the_answer_they_serve(app, client):
    saved = grounded_answer(app, "How long do I have for a refund?")
    body = client.post("/v1/ask", json={"question": "How long do I have for a refund?"}).json
    assert (body["grounded"], body["sources"], body["answer_id"]) == (True, SOURCES, saved["answer_id"])
    template = client.post("/v1/ask", json={"question": "hello"}).json
    assert (template["source"], template["grounded"], template["sources"]) == ("template", False, [])
    chat = client.post("/v1/chat/completions", json={"model": "m", "messages": [
        {"role": "user", "content": "How long do I have for a refund?"}]})
    assert chat.json["precache"] == {"grounded": True, "sources": SOURCES}
    assert json.loads(chat.headers["x-precache-sources"]) == [{"document": "billing/refunds.md", "score": 0.81}]
    assert "x-precache-sources" not in client.post("/v1/chat/completions", json={"model": "m", "messages": [
        {"role": "user", "content": "hello"}]}).headers
