"""Documents on SQLite and PostgreSQL with the real embedder: import, re-import, prune, retrieval, the
relevance check, and what a change of a document does to the cached answers that used it."""

import json

import pytest
from sqlalchemy import func, select

from precache import keys
from precache.config import load_settings
from precache.context import Context
from precache.documents import retrieval
from precache.documents.importing import import_documents, listed
from precache.documents.reading import Document
from precache.models import AnswerDocument, Passage
from precache.semantic.embedders import embedder_for
from tests.conftest import store_question

ARTICLES = [
    Document("password-reset.md", "# Resetting your password\n\nOpen the sign-in page and choose Forgot "
             "password. We e-mail you a reset link that works for one hour."),
    Document("refunds.md", "# Refunds\n\nYou can ask for a refund within 30 days of your purchase. The money "
             "goes back to your card within five business days."),
    Document("shipping.md", "# Shipping\n\nStandard shipping takes three to five business days. Express "
             "shipping arrives the next business day."),
]


@pytest.fixture
def ctx(config):
    ctx = Context(load_settings(**config))
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def embedder():
    return embedder_for(load_settings(), threads=None)


def passages_of(ctx) -> int:
    with ctx.sessions() as session:
        return session.scalar(select(func.count(Passage.id)))


def test_import_stores_passages_and_a_second_import_leaves_unchanged_documents_alone(ctx, embedder):
    first = import_documents(ctx, embedder, ARTICLES)
    assert (sorted(first.added), first.updated, first.passages) == (
        ["password-reset.md", "refunds.md", "shipping.md"], [], 3)
    again = import_documents(ctx, embedder, ARTICLES)
    assert (again.added, again.updated, sorted(again.unchanged), again.passages) == (
        [], [], ["password-reset.md", "refunds.md", "shipping.md"], 0)
    assert [row["name"] for row in listed(ctx)] == ["password-reset.md", "refunds.md", "shipping.md"]
    assert passages_of(ctx) == 3


def test_documents_belong_to_their_tenant(ctx, embedder):
    import_documents(ctx.for_tenant("acme"), embedder, ARTICLES[:1])
    assert listed(ctx) == []
    assert retrieval.ground(ctx, embedder, "How do I reset my password?") == (None, [])
    grounding, found = retrieval.ground(ctx.for_tenant("acme"), embedder, "How do I reset my password?")
    assert (grounding, found[0].document) == ("grounded", "password-reset.md")


def test_retrieval_finds_the_right_article_and_the_relevance_check_refuses_other_subjects(ctx, embedder):
    import_documents(ctx, embedder, ARTICLES)
    grounding, found = retrieval.ground(ctx, embedder, "How long does express delivery take?")
    assert grounding == "grounded"
    assert found[0].document == "shipping.md"
    assert found[0].source() == {"document": "shipping.md", "excerpt": ARTICLES[2].text.split("\n\n", 1)[1],
                                 "score": pytest.approx(found[0].similarity, abs=1e-4)}
    assert retrieval.ground(ctx, embedder, "What is the capital of France?") == ("not_in_documents", [])


def test_preferred_and_off_grounding(config, embedder):
    for mode, expected in (("preferred", "ungrounded"), ("off", None)):
        ctx = Context(load_settings(**config, grounding=mode))
        import_documents(ctx, embedder, ARTICLES)
        assert retrieval.ground(ctx, embedder, "What is the capital of France?") == (expected, [])
        ctx.close()


def test_a_document_that_fails_keeps_what_it_had(ctx, embedder, monkeypatch):
    import_documents(ctx, embedder, ARTICLES)
    changed = [Document("refunds.md", "# Refunds\n\nRefunds within 14 days."), ARTICLES[2]]
    real = embedder.encode

    def failing(texts, **kw):
        if any("14 days" in text for text in texts):
            raise RuntimeError("the embedder broke")
        return real(texts, **kw)

    monkeypatch.setattr(embedder, "encode", failing)
    report = import_documents(ctx, embedder, changed)
    assert report.failed == [{"name": "refunds.md", "error": "RuntimeError: the embedder broke"}]
    with ctx.sessions() as session:
        texts = list(session.scalars(select(Passage.text)))
    assert any("30 days" in text for text in texts) and not any("14 days" in text for text in texts)


def save_grounded(ctx, question: str, document_ids: list[int], grounding: str = "grounded") -> dict:
    question_id, qhash = store_question(ctx, question)
    return ctx.store.save_answer(question_id, f"answer to {question}", grounding=grounding,
                                 sources=[{"document": "refunds.md", "excerpt": "30 days", "score": 0.8}],
                                 documents=document_ids, quality=0.9) | {"qhash": qhash}


def document_id(ctx, name: str) -> int:
    return next(row for row in _ids(ctx) if row[0] == name)[1]


def _ids(ctx):
    from precache.models import Document as Stored

    with ctx.sessions() as session:
        return session.execute(select(Stored.name, Stored.id)).all()


def test_a_changed_document_outdates_the_answers_that_used_it_at_once_and_queues_them_again(ctx, embedder):
    import_documents(ctx, embedder, ARTICLES)
    refunds, shipping = document_id(ctx, "refunds.md"), document_id(ctx, "shipping.md")
    used = save_grounded(ctx, "How long do I have for a refund?", [refunds])
    other = save_grounded(ctx, "How long is shipping?", [shipping])
    uncovered = save_grounded(ctx, "What is the capital of France?", [], grounding="not_in_documents")
    assert ctx.store.lookup(used["qhash"])[0]["sources"][0]["document"] == "refunds.md"  # in the hot cache now
    report = import_documents(ctx, embedder, [Document("refunds.md", "# Refunds\n\nRefunds within 14 days.")])
    assert (report.updated, report.outdated, report.queued) == (["refunds.md"], 2, 1)
    assert ctx.store.lookup(used["qhash"]) is None  # neither the hot cache nor SQL serves it
    assert ctx.redis.get(keys.answer(ctx.ns, used["qhash"])) is None
    assert ctx.store.lookup(uncovered["qhash"]) is None  # the new text may cover it
    assert ctx.store.lookup(other["qhash"])[0]["answer_id"] == other["answer_id"]
    job_id = ctx.jobs.pending_job(ctx.ns, used["qhash"], "refresh")
    assert job_id and ctx.jobs.get(job_id)["status"] == "pending"


def test_prune_removes_documents_no_longer_imported_and_outdates_their_answers(ctx, embedder):
    import_documents(ctx, embedder, ARTICLES)
    used = save_grounded(ctx, "How long do I have for a refund?", [document_id(ctx, "refunds.md")])
    kept = import_documents(ctx, embedder, ARTICLES[:1])
    assert (kept.removed, len(listed(ctx))) == ([], 3)  # without --prune nothing goes
    pruned = import_documents(ctx, embedder, ARTICLES[:1], prune=True)
    assert pruned.removed == ["refunds.md", "shipping.md"]
    assert [row["name"] for row in listed(ctx)] == ["password-reset.md"]
    assert ctx.store.lookup(used["qhash"]) is None
    with ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AnswerDocument)) == 0


def test_passages_stored_under_another_embedder_are_embedded_again_on_load(ctx, embedder):
    import_documents(ctx, embedder, ARTICLES)
    with ctx.sessions() as session:
        session.execute(Passage.__table__.update().values(model="an-old-embedder"))
        session.commit()
    retrieval._libraries.clear()
    grounding, found = retrieval.ground(ctx, embedder, "How do I reset my password?")
    assert (grounding, found[0].document) == ("grounded", "password-reset.md")
    with ctx.sessions() as session:
        assert set(session.scalars(select(Passage.model))) == {embedder.name()}


def test_the_payload_of_a_grounded_answer_carries_its_sources_into_the_hot_cache(ctx, embedder):
    import_documents(ctx, embedder, ARTICLES)
    saved = save_grounded(ctx, "How long do I have for a refund?", [document_id(ctx, "refunds.md")])
    cached = json.loads(ctx.redis.get(keys.answer(ctx.ns, saved["qhash"])))
    assert (cached["grounding"], cached["sources"][0]["document"]) == ("grounded", "refunds.md")


def test_with_grounding_off_an_import_leaves_the_models_answers_alone(config, embedder):
    ctx = Context(load_settings(**config, grounding="off"))
    question_id, qhash = store_question(ctx, "What is the capital of France?")
    ctx.store.save_answer(question_id, "Paris.", quality=0.9)
    assert import_documents(ctx, embedder, ARTICLES).outdated == 0
    assert ctx.store.lookup(qhash)[0]["answer"] == "Paris."
    ctx.close()


def test_on_first_import_answers_written_without_documents_stop_being_served(ctx, embedder):
    question_id, qhash = store_question(ctx, "How do I reset my password?")
    ctx.store.save_answer(question_id, "Use 123Density, a reputable password service.", quality=0.78)
    curated_id, curated_hash = store_question(ctx, "Where are you?")
    ctx.store.save_answer(curated_id, "In Seoul.", curated=True)
    assert import_documents(ctx, embedder, ARTICLES).outdated == 1
    assert ctx.store.lookup(qhash) is None  # a person's curated answer stays
    assert ctx.store.lookup(curated_hash)[0]["answer"] == "In Seoul."
