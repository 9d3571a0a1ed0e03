"""The admin API: the key gate, FAQ import, precompute, review, approve, invalidate, pin, replace, tenants."""

import pytest

from precache.normalize import normalize, question_hash
from web import create_app

KEY = "s3cret-admin-key"


@pytest.fixture
def admin_app(config):
    app = create_app({**config, "api_key": KEY})
    yield app
    app.extensions["precache"].close()


@pytest.fixture
def api(admin_app):
    client = admin_app.test_client()

    def call(method, path, key=KEY, **kwargs):
        headers = {"X-API-Key": key} if key is not None else {}
        return client.open(path, method=method, headers=headers, **kwargs)

    return call


def _stored_low_answer(app, text="How do I reset my password?", tenant=""):
    ctx = app.extensions["precache"].for_tenant(tenant)
    n = normalize(text)
    qid = ctx.store.ensure_question(text, n, question_hash(n))
    return ctx.store.save_answer(qid, "password password", model="m", quality=0.05)


def test_admin_is_disabled_without_a_key(client):
    response = client.get("/v1/admin/review", headers={"X-API-Key": "anything"})
    assert response.status_code == 404
    assert "PRECACHE_API_KEY" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("key", [None, "", "wrong", KEY[:-1], KEY + "x"])
def test_wrong_or_missing_key_is_401(api, key):
    response = api("GET", "/v1/admin/review", key=key)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_review_then_approve_serves_the_answer(api, admin_app):
    low = _stored_low_answer(admin_app)
    listed = api("GET", "/v1/admin/review").get_json()["answers"]
    assert [a["answer_id"] for a in listed] == [low["answer_id"]]
    assert listed[0]["components"] == {} and listed[0]["quality"] == 0.05
    ask = admin_app.test_client().post("/v1/ask", json={"question": "How do I reset my password?"})
    assert ask.get_json()["source"] == "fallback"  # gated: never served
    assert api("POST", f"/v1/admin/answers/{low['answer_id']}/approve").get_json()["review"] == "approved"
    ask = admin_app.test_client().post("/v1/ask", json={"question": "How do I reset my password?"})
    assert ask.get_json()["source"] == "exact" and ask.get_json()["answer_id"] == low["answer_id"]
    assert api("POST", f"/v1/admin/answers/{low['answer_id']}/invalidate").status_code == 200
    ask = admin_app.test_client().post("/v1/ask", json={"question": "How do I reset my password?"})
    assert ask.get_json()["source"] == "fallback"


def test_replace_and_pin(api, admin_app):
    low = _stored_low_answer(admin_app)
    replaced = api("POST", f"/v1/admin/answers/{low['answer_id']}/replace",
                   json={"answer": "Use the 'Forgot password' link."}).get_json()
    ask = admin_app.test_client().post("/v1/ask", json={"question": "how do i reset my password"}).get_json()
    assert ask["answer"] == "Use the 'Forgot password' link." and ask["answer_id"] == replaced["replaced_by"]
    assert api("POST", f"/v1/admin/answers/{low['answer_id']}/pin", json={"pinned": "yes"}).status_code == 400
    assert api("POST", f"/v1/admin/answers/{replaced['replaced_by']}/pin").get_json()["pinned"] is True


@pytest.mark.parametrize("path, body, expected", [
    ("/v1/admin/answers/424242/approve", None, 404),
    ("/v1/admin/answers/1/replace", {"answer": ""}, 400),
    ("/v1/admin/faq", {"entries": []}, 400),
    ("/v1/admin/faq", {"entries": [{"question": "ok?"}, {"question": 3}]}, 400),
    ("/v1/admin/precompute", {"tenant": "no spaces allowed"}, 400),
])
def test_bad_admin_requests_are_4xx_with_a_message(api, path, body, expected):
    response = api("POST", path, json=body) if body is not None else api("POST", path)
    assert response.status_code == expected
    assert response.get_json()["error"]["message"]


def test_faq_import_and_precompute_per_tenant(api, admin_app):
    entries = [{"question": "Where is the office?", "answer": "Main Street 1."},
               {"question": "Do you ship abroad?", "reference": "Yes, to the EU."}]
    imported = api("POST", "/v1/admin/faq", json={"entries": entries, "tenant": "acme"}).get_json()
    assert imported == {"questions": 2, "curated_answers": 1}
    client = admin_app.test_client()
    mine = client.post("/v1/ask", json={"question": "Where is the office?", "tenant": "acme"}).get_json()
    theirs = client.post("/v1/ask", json={"question": "Where is the office?", "tenant": "globex"}).get_json()
    assert mine["answer"] == "Main Street 1." and mine["source"] == "exact"
    assert theirs["source"] == "fallback"  # another tenant never sees acme's answer
    queued = api("POST", "/v1/admin/precompute", json={"tenant": "acme"}).get_json()
    assert queued["queued"] == 1  # only the question without an answer
    again = api("POST", "/v1/admin/precompute", json={"tenant": "acme"}).get_json()
    assert again["job_ids"] == queued["job_ids"]  # single flight: the same job, not a second one


def test_key_never_appears_in_logs(api, admin_app, caplog):
    with caplog.at_level("DEBUG"):
        api("GET", "/v1/admin/review")
        api("GET", "/v1/admin/review", key="wrong")
    assert KEY not in caplog.text
