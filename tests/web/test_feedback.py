"""POST /v1/feedback and GET /v1/answers: askers pick suggestions, the cache learns, and cannot be poisoned."""

import pytest
from sqlalchemy import select

from precache.faq import FaqEntry, import_faq
from precache.models import Feedback
from web import create_app

pytestmark = pytest.mark.model

PASSWORD = "Open Settings, choose Security, then Reset password."
FAQ = [
    ("How do I reset my password?", PASSWORD),
    ("How do I cancel my subscription?", "Go to Billing and choose Cancel subscription."),
    ("What are your opening hours on weekdays?", "Nine to five, Monday to Friday."),
    ("How do I update my billing address?", "Open Billing, then Address, and save the new one."),
]
LOCKED_OUT = "I am locked out and cannot sign in"
KEY = "calling-app-key"  # PRECACHE_FEEDBACK_KEY of the apps that vouch for their askers


@pytest.fixture
def faq_app(app):
    import_faq(app.extensions["precache"], [FaqEntry(i, q, a) for i, (q, a) in enumerate(FAQ, 1)])
    return app


@pytest.fixture
def vouching_app(config):
    """The FAQ app behind a calling app that holds the feedback key: X-Asker-Id names its askers."""
    app = create_app(config | {"feedback_key": KEY})
    import_faq(app.extensions["precache"], [FaqEntry(i, q, a) for i, (q, a) in enumerate(FAQ, 1)])
    yield app
    app.extensions["precache"].close()


def _suggested(client, question: str, answer: str, **extra) -> int:
    body = client.post("/v1/ask", json={"question": question, **extra}).json
    assert body["status"] == "pending", body
    for s in body["suggestions"]:
        if client.get(f"/v1/answers/{s['answer_id']}", query_string=extra).json["answer"] == answer:
            return s["answer_id"]
    raise AssertionError(f"{answer!r} not suggested for {question!r}: {body['suggestions']}")


def _client_at(app, address: str):
    """A test client whose requests come from `address` (another asker, without the feedback key)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _feedback(client, question, answer_id, helpful, asker="alice", **extra):
    return client.post("/v1/feedback", json={"question": question, "answer_id": answer_id, "helpful": helpful,
                                              **extra}, headers={"X-Asker-Id": asker, "X-Feedback-Key": KEY})


def test_a_miss_suggests_answers_an_asker_can_open(faq_app):
    client = faq_app.test_client()
    body = client.post("/v1/ask", json={"question": LOCKED_OUT}).json
    assert 1 <= len(body["suggestions"]) <= 3
    ids = [s["answer_id"] for s in body["suggestions"]]
    assert len(set(ids)) == len(ids)
    shown = client.get(f"/v1/answers/{ids[0]}").json
    assert shown["answer_id"] == ids[0] and shown["answer"] and shown["question"] == body["suggestions"][0]["question"]
    assert client.get("/v1/answers/999999").status_code == 404
    assert client.get("/v1/answers/99999999999999999999").status_code == 404


def test_a_picked_suggestion_is_an_instant_answer_next_time_in_every_process(faq_app, config, redis_client):
    client = faq_app.test_client()
    answer_id = _suggested(client, LOCKED_OUT, PASSWORD)
    done = _feedback(client, LOCKED_OUT, answer_id, True).json
    assert done == {"recorded": True, "learned": False, "proposed": True, "retracted": 0}
    mine = client.post("/v1/ask", json={"question": LOCKED_OUT}).json
    assert mine["status"] == "ready" and mine["answer"] == PASSWORD  # the asker who picked it: at once
    other = _client_at(faq_app, "192.0.2.9").post("/v1/ask", json={"question": LOCKED_OUT}).json
    assert other["status"] == "pending"  # anyone else: not on one asker's word
    done = _feedback(_client_at(faq_app, "192.0.2.7"), LOCKED_OUT, answer_id, True).json
    assert done == {"recorded": True, "learned": True, "proposed": False, "retracted": 0}  # a second asker
    again = _client_at(faq_app, "192.0.2.9").post("/v1/ask", json={"question": LOCKED_OUT}).json
    assert again["status"] == "ready" and again["answer"] == PASSWORD
    redis_client.flushdb()  # a Redis flush and a restart lose nothing: the link is in SQL
    other = create_app(config)
    try:
        assert other.test_client().post("/v1/ask", json={"question": LOCKED_OUT}).json["answer"] == PASSWORD
        tier = other.extensions["precache_ladder"].tier
        vector = tier.vector(LOCKED_OUT)
        assert tier.refreshed(other.extensions["precache"])
        assert tier.offers(other.extensions["precache"], vector, 1)[0][0]["answer"] == PASSWORD
    finally:
        other.extensions["precache"].close()


def test_a_learned_phrasing_counts_for_questions_near_it(faq_app):
    client = faq_app.test_client()
    tier, ctx = faq_app.extensions["precache_ladder"].tier, faq_app.extensions["precache"]
    near = "I'm locked out and can't sign in to my account"
    assert tier.refreshed(ctx)
    before = next(n.confidence for p, n in tier.offers(ctx, tier.vector(near)) if p["answer"] == PASSWORD)
    answer_id = _suggested(client, LOCKED_OUT, PASSWORD)
    for at in ("192.0.2.7", "192.0.2.8"):
        _feedback(_client_at(faq_app, at), LOCKED_OUT, answer_id, True)
    assert tier.refreshed(ctx)
    after = next(n for p, n in tier.offers(ctx, tier.vector(near)) if p["answer"] == PASSWORD)
    assert after.matched_question == LOCKED_OUT and after.confidence > before


def test_an_answer_the_ladder_did_not_offer_cannot_be_linked(faq_app):
    client = faq_app.test_client()
    hours = client.post("/v1/ask", json={"question": FAQ[2][0]}).json["answer_id"]
    bad = _feedback(client, LOCKED_OUT, hours, True, asker="mallory")
    assert bad.status_code == 422 and "offers" in bad.json["error"]["message"]
    assert client.post("/v1/ask", json={"question": LOCKED_OUT}).json["answer"] != FAQ[2][1]
    assert _feedback(client, LOCKED_OUT, 424242, True).status_code == 404


def test_another_askers_rejection_retracts_a_learned_phrasing_at_once(vouching_app):
    client = vouching_app.test_client()
    answer_id = _suggested(client, LOCKED_OUT, PASSWORD)
    for asker in ("mallory", "alice"):
        _feedback(client, LOCKED_OUT, answer_id, True, asker=asker)
    served = client.post("/v1/ask", json={"question": LOCKED_OUT}).json
    assert served["answer"] == PASSWORD
    done = _feedback(client, LOCKED_OUT, served["answer_id"], False, asker="bob").json
    assert done["retracted"] == 2  # every asker's row of the link
    assert client.post("/v1/ask", json={"question": LOCKED_OUT}).json["answer"] != PASSWORD
    learned = vouching_app.extensions["precache"]
    from precache.feedback import learned as listed
    rows = listed(learned)
    assert {row["taught_by"] for row in rows} == {"asker:mallory", "asker:alice"}
    assert {row["retracted_by"] for row in rows} == {"asker:bob"}


def test_a_rejected_generated_answer_is_never_served_to_that_phrasing_again(config):
    from precache.semantic.embedders import embedder_for
    from precache.semantic.store import index_question
    from tests.conftest import store_question

    app = create_app(config)
    try:
        ctx = app.extensions["precache"]
        question_id, _ = store_question(ctx, FAQ[0][0])
        ctx.store.save_answer(question_id, PASSWORD, model="m", quality=0.95)  # generated, not curated
        index_question(ctx, embedder_for(ctx.settings), question_id)
        client, question = app.test_client(), "I forgot my password, how do I reset it?"
        first = client.post("/v1/ask", json={"question": question}).json
        assert first["source"] == "semantic" and first["answer"] == PASSWORD
        assert _feedback(client, question, first["answer_id"], False).json["recorded"]
        again = client.post("/v1/ask", json={"question": question}).json
        assert again["source"] != "semantic"
        assert client.post("/v1/ask", json={"question": FAQ[0][0]}).json["answer"] == PASSWORD  # still its own
    finally:
        app.extensions["precache"].close()


def test_no_askers_feedback_moves_what_others_are_served_for_a_curated_answer(faq_app):
    paraphrases = ["I forgot my password, how do I reset it?", "how can I reset my password",
                   "What do I do to reset my password?"]
    victim, attacker = faq_app.test_client(), _client_at(faq_app, "203.0.113.66")
    served = {q: victim.post("/v1/ask", json={"question": q}).json for q in paraphrases}
    assert all(body["answer"] == PASSWORD for body in served.values()), served
    for n in range(20):  # rejections and "none fits", with made-up ids, from one address
        question = paraphrases[n % len(paraphrases)]
        attacker.post("/v1/feedback", json={"question": question, "answer_id": served[question]["answer_id"],
                                            "helpful": False}, headers={"X-Asker-Id": f"sock-{n}"})
        attacker.post("/v1/feedback", json={"question": question + "!" * (n + 1), "answer_id": None,
                                            "helpful": False}, headers={"X-Asker-Id": f"sock-{n}"})
    for question, before in served.items():  # the victims' paraphrases still hit, from the same tier
        after = victim.post("/v1/ask", json={"question": question}).json
        assert (after["source"], after["answer"]) == (before["source"], PASSWORD)


def test_one_anonymous_helpful_feedback_does_not_re_point_a_curated_answer(faq_app):
    ladder, victim = faq_app.extensions["precache_ladder"], faq_app.test_client()
    from web.ladder import Ask

    offered = ladder.offered(Ask.of(FAQ[0][0]))
    other = next(answer_id for answer_id in offered if answer_id != victim.post(
        "/v1/ask", json={"question": FAQ[0][0]}).json["answer_id"])  # another FAQ answer the ladder offers
    for n in range(5):  # five addresses: five askers, all "picking" the other answer for the password question
        done = _feedback(_client_at(faq_app, f"198.51.100.{n}"), FAQ[0][0], other, True).json
        assert done["recorded"] and not done["learned"] and not done["proposed"]
    assert victim.post("/v1/ask", json={"question": FAQ[0][0]}).json["answer"] == PASSWORD


def test_none_fits_is_recorded_and_must_say_not_helpful(faq_app):
    client = faq_app.test_client()
    client.post("/v1/ask", json={"question": "Do you sell gift cards?"})
    assert _feedback(client, "Do you sell gift cards?", None, False).json == \
        {"recorded": True, "learned": False, "proposed": False, "retracted": 0}
    bad = _feedback(client, "Do you sell gift cards?", None, True)
    assert bad.status_code == 400 and "helpful" in bad.json["error"]["message"]


@pytest.mark.parametrize("body, field", [
    ({"answer_id": 1, "helpful": True}, "question"),
    ({"question": "x?", "helpful": True}, "answer_id"),
    ({"question": "x?", "answer_id": "1", "helpful": True}, "answer_id"),
    ({"question": "x?", "answer_id": 1, "helpful": "yes"}, "helpful"),
    ({"question": "x?", "answer_id": 1, "helpful": True, "extra": 1}, "extra"),
    ({"question": "  ", "answer_id": 1, "helpful": True}, "question"),
    ({"question": "x?", "answer_id": 1, "helpful": True, "tenant": "a b"}, "tenant"),
])
def test_a_bad_feedback_body_is_a_400_naming_the_field(faq_app, body, field):
    r = faq_app.test_client().post("/v1/feedback", json=body)
    assert r.status_code == 400 and r.json["error"]["message"].startswith(field)


def test_the_feedback_key_is_required_when_set(config):
    app = create_app({**config, "feedback_key": "s3cret"})
    try:
        client = app.test_client()
        body = {"question": "Do you sell gift cards?", "answer_id": None, "helpful": False}
        assert client.post("/v1/feedback", json=body).status_code == 401
        assert client.post("/v1/feedback", json=body, headers={"X-Feedback-Key": "s3cret"}).status_code == 200
    finally:
        app.extensions["precache"].close()


def test_learning_off_records_feedback_but_links_nothing(config):
    app = create_app({**config, "learn": False})
    try:
        import_faq(app.extensions["precache"], [FaqEntry(i, q, a) for i, (q, a) in enumerate(FAQ, 1)])
        client = app.test_client()
        done = _feedback(client, LOCKED_OUT, _suggested(client, LOCKED_OUT, PASSWORD), True).json
        assert done == {"recorded": True, "learned": False, "proposed": False, "retracted": 0}
        assert client.post("/v1/ask", json={"question": LOCKED_OUT}).json["status"] == "pending"
    finally:
        app.extensions["precache"].close()


def test_a_tenants_learned_phrasing_is_not_served_to_another_tenant(config):
    app = create_app(config)
    try:
        ctx = app.extensions["precache"]
        for tenant in ("acme", "globex"):
            import_faq(ctx.for_tenant(tenant), [FaqEntry(i, q, f"{tenant}: {a}") for i, (q, a) in enumerate(FAQ, 1)])
        client = app.test_client()
        answer_id = _suggested(client, LOCKED_OUT, f"acme: {PASSWORD}", tenant="acme")
        assert _feedback(client, LOCKED_OUT, answer_id, True, tenant="acme").json["proposed"]
        assert _feedback(_client_at(app, "192.0.2.7"), LOCKED_OUT, answer_id, True, tenant="acme").json["learned"]
        assert client.post("/v1/ask", json={"question": LOCKED_OUT, "tenant": "acme"}).json["answer"] \
            == f"acme: {PASSWORD}"
        other = client.post("/v1/ask", json={"question": LOCKED_OUT, "tenant": "globex"}).json
        assert other["status"] == "pending" and not other["answer"].startswith("acme")
    finally:
        app.extensions["precache"].close()


def test_admins_list_and_unlearn_learned_phrasings(vouching_app, config):
    client = vouching_app.test_client()
    _feedback(client, LOCKED_OUT, _suggested(client, LOCKED_OUT, PASSWORD), True, asker="carol")
    admin = create_app({**config, "api_key": "k"})
    try:
        api = admin.test_client()
        rows = api.get("/v1/admin/learned", headers={"X-API-Key": "k"}).json["learned"]
        assert [(r["phrasing"], r["taught_by"], r["confirmed_at"], r["retracted_at"]) for r in rows] == [
            (LOCKED_OUT, "asker:carol", None, None)]  # one asker: proposed
        assert api.post(f"/v1/admin/learned/{rows[0]['id']}/confirm", headers={"X-API-Key": "k"}).json["confirmed_at"]
        assert client.post("/v1/ask", json={"question": LOCKED_OUT}).json["answer"] == PASSWORD  # the admin's word
        assert api.post(f"/v1/admin/learned/{rows[0]['id']}/unlearn", headers={"X-API-Key": "k"}).json["retracted_at"]
        assert api.post("/v1/admin/learned/777/unlearn", headers={"X-API-Key": "k"}).status_code == 404
        assert api.post("/v1/admin/learned/777/confirm", headers={"X-API-Key": "k"}).status_code == 404
    finally:
        admin.extensions["precache"].close()
    assert client.post("/v1/ask", json={"question": LOCKED_OUT}).json["status"] == "pending"


def test_feedback_with_the_database_down_is_a_503_asking_to_send_it_again(config):
    app = create_app({**config, "database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none"})
    try:
        r = app.test_client().post("/v1/feedback", json={"question": "Do you sell gift cards?", "answer_id": 3,
                                                         "helpful": True})
        assert r.status_code == 503 and "again" in r.json["error"]["message"]
    finally:
        app.extensions["precache"].close()


def askers(app) -> list[str]:
    with app.extensions["precache"].sessions() as session:
        return sorted(session.scalars(select(Feedback.asker)))


NONE_FITS = {"question": "Do you sell gift cards?", "answer_id": None, "helpful": False}


def test_made_up_asker_ids_from_one_address_are_one_asker(faq_app):
    client = faq_app.test_client()
    for n in range(20):
        r = client.post("/v1/feedback", json=NONE_FITS, headers={"X-Asker-Id": f"sock-puppet-{n}"},
                        environ_base={"REMOTE_ADDR": "198.51.100.7"})
        assert r.status_code == 200
    assert askers(faq_app) == ["address:198.51.100.7"] * 20


def test_with_the_feedback_key_the_calling_app_names_its_askers(vouching_app):
    client = vouching_app.test_client()
    for name in ("alice", "bob"):
        r = client.post("/v1/feedback", json=NONE_FITS, headers={"X-Asker-Id": name, "X-Feedback-Key": KEY},
                        environ_base={"REMOTE_ADDR": "198.51.100.7"})
        assert r.status_code == 200
    assert askers(vouching_app) == ["asker:alice", "asker:bob"]


def test_behind_a_trusted_proxy_the_asker_is_the_forwarded_client(config):
    app = create_app(config | {"trusted_proxies": "10.0.0.0/24"})
    try:
        client = app.test_client()
        for peer, forwarded in [("10.0.0.5", "1.1.1.1, 203.0.113.9"), ("198.51.100.7", "203.0.113.10")]:
            r = client.post("/v1/feedback", json=NONE_FITS, headers={"X-Forwarded-For": forwarded},
                            environ_base={"REMOTE_ADDR": peer})
            assert r.status_code == 200
        # The proxy's client, not the spoofed leftmost entry; an untrusted peer's header ignored.
        assert askers(app) == ["address:198.51.100.7", "address:203.0.113.9"]
    finally:
        app.extensions["precache"].close()


def test_an_admin_lists_and_withdraws_a_negative_and_every_process_forgets_it(config):
    from precache.semantic.embedders import embedder_for
    from precache.semantic.store import index_question
    from tests.conftest import store_question

    app, admin = create_app(config), create_app({**config, "api_key": "k"})
    try:
        ctx = app.extensions["precache"]
        question_id, _ = store_question(ctx, FAQ[0][0])
        ctx.store.save_answer(question_id, PASSWORD, model="m", quality=0.95)
        index_question(ctx, embedder_for(ctx.settings), question_id)
        client, question = app.test_client(), "I forgot my password, how do I reset it?"
        first = client.post("/v1/ask", json={"question": question}).json
        _feedback(client, question, first["answer_id"], False)
        assert client.post("/v1/ask", json={"question": question}).json["source"] != "semantic"
        api, key = admin.test_client(), {"X-API-Key": "k"}
        [negative] = api.get("/v1/admin/negatives", query_string={"answer_id": first["answer_id"]},
                             headers=key).json["negatives"]
        assert (negative["phrasing"], negative["asker"]) == (question, "address:127.0.0.1")
        assert api.post(f"/v1/admin/negatives/{negative['id']}/withdraw", headers=key).json["withdrawn"]
        assert api.post(f"/v1/admin/negatives/{negative['id']}/withdraw", headers=key).status_code == 404
        assert api.get("/v1/admin/negatives", headers=key).json["negatives"] == []
        again = client.post("/v1/ask", json={"question": question}).json  # another process: it forgot the veto
        assert again["source"] == "semantic" and again["answer"] == PASSWORD
    finally:
        app.extensions["precache"].close()
        admin.extensions["precache"].close()
