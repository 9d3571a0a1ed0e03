"""The semantic tier in the ladder: paraphrases hit, near-duplicates that differ do not."""

import pytest

from precache.faq import FaqEntry, import_faq

pytestmark = pytest.mark.model

FAQ = [
    ("How do I reset my password?", "Open Settings, choose Security, then Reset password."),
    ("How can I change the password of my account?", "Open Settings, choose Security, then Reset password."),
    ("How do I cancel my subscription?", "Go to Billing and choose Cancel subscription."),
    ("Can I get a refund within 30 days?", "Yes, within 30 days of purchase."),
    ("What are your opening hours on weekdays?", "Nine to five, Monday to Friday."),
]


@pytest.fixture
def faq_app(app):
    ctx = app.extensions["precache"]
    import_faq(ctx, [FaqEntry(i, q, a) for i, (q, a) in enumerate(FAQ, 1)])
    return app


def test_a_paraphrase_is_a_semantic_hit(faq_app):
    r = faq_app.test_client().post("/v1/ask", json={"question": "I forgot my password, how do I reset it?"})
    assert r.status_code == 200
    body = r.json
    assert body["source"] == "semantic"
    assert body["answer"] == "Open Settings, choose Security, then Reset password."
    assert body["matched_question"] in {q for q, _ in FAQ[:2]}
    assert 0 < body["similarity"] <= 1


def test_a_different_number_is_not_served(faq_app):
    r = faq_app.test_client().post("/v1/ask", json={"question": "Can I get a refund within 90 days?"})
    assert r.json["source"] != "semantic"


def test_an_unrelated_question_misses_with_suggestions(faq_app):
    r = faq_app.test_client().post("/v1/ask", json={"question": "How do I cancel my order?"})
    assert r.status_code == 202
    assert "How do I cancel my subscription?" in [s["question"] for s in r.json.get("suggestions", [])]


def test_semantic_hits_are_counted_and_logged(faq_app):
    client = faq_app.test_client()
    client.post("/v1/ask", json={"question": "I forgot my password, how do I reset it?"})
    stats = client.get("/v1/stats").json
    assert stats["sources"]["semantic"]["count"] == 1


def test_a_repeated_question_is_decided_again_without_encoding_again(faq_app, monkeypatch):
    from precache.semantic.embedders import embedder_for

    embedder, calls = embedder_for(faq_app.extensions["precache"].settings), []
    encode_one = embedder.encode_one
    monkeypatch.setattr(embedder, "encode_one", lambda text: calls.append(text) or encode_one(text))
    client = faq_app.test_client()
    question = "My password is forgotten, how can I reset it?"
    first, again = (client.post("/v1/ask", json={"question": question}).json for _ in range(2))
    assert first["source"] == again["source"] == "semantic" and first["answer"] == again["answer"]
    assert calls == [question]
