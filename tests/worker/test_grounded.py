"""Generation jobs in a tenant with documents (worker/plan.py, worker/settle.py): answered from the relevant
passages with their sources, the not-in-documents answer where none is relevant, the passages' own sentences
where the model's answer says what they do not, and a generation whose passages changed meanwhile done again."""

import pytest
from sqlalchemy import select

from precache.config import load_settings
from precache.context import Context
from precache.documents.importing import import_documents
from precache.documents.reading import Document
from precache.models import Answer, AnswerDocument
from precache.semantic.embedders import embedder_for
from tests.worker.test_generation import enqueue, smollm2  # noqa: F401 - the fixture
from worker.backends import Generation
from worker.generation import JobRequest, answer_questions
from worker.plan import Plan
from worker.settle import settle
from worker.work import Generated

pytestmark = pytest.mark.model

REFUNDS = Document("refunds.md", "# Refunds\n\nYou can ask for a refund within 30 days of your purchase. Open "
                   "Orders, pick the order and choose Request refund. The money goes back to your card.")
SHIPPING = Document("shipping.md", "# Shipping\n\nStandard shipping takes three to five business days.")
QUESTION = "How many days do I have to ask for a refund?"


@pytest.fixture
def ctx(config):
    ctx = Context(load_settings(**config, not_in_documents_answer="Not in our documents."))
    import_documents(ctx, embedder_for(ctx.settings, threads=None), [REFUNDS, SHIPPING])
    yield ctx
    ctx.close()


def planned(ctx, question: str):
    job_id, question_id = enqueue(ctx, question)
    plan = Plan()
    assert plan.add(ctx, 0, JobRequest(question_id, job_id)) is None
    [item] = [item for items in plan.groups.values() for item in items]
    return item


def stored(ctx, answer_id: int) -> Answer:
    with ctx.sessions() as session:
        return session.get(Answer, answer_id)


def test_a_question_the_documents_cover_is_answered_from_its_passages_with_sources(ctx, smollm2):  # noqa: F811
    job_id, question_id = enqueue(ctx, QUESTION)
    [served] = answer_questions(ctx, smollm2, [JobRequest(question_id, job_id)])
    assert served["grounding"] == "grounded"
    assert served["sources"][0]["document"] == "refunds.md"
    assert "30 days" in served["sources"][0]["excerpt"]
    with ctx.sessions() as session:
        documents = set(session.scalars(select(AnswerDocument.document_id)
                                        .where(AnswerDocument.answer_id == served["answer_id"])))
    assert len(documents) == len({s["document"] for s in served["sources"]})
    assert ctx.jobs.get(job_id)["status"] == "ready"
    assert not ctx.store.has_level(question_id, "detailed") and not ctx.jobs.pending_job(
        ctx.ns, served["qhash"], "detailed")  # the answer is the passages': no detailed one from memory


def test_a_question_the_documents_do_not_cover_gets_the_configured_answer_without_the_model(ctx, smollm2):  # noqa: F811
    job_id, question_id = enqueue(ctx, "What is the capital of France?")
    [served] = answer_questions(ctx, smollm2, [JobRequest(question_id, job_id)])
    assert (served["answer"], served["grounding"], served["sources"]) == ("Not in our documents.",
                                                                         "not_in_documents", [])
    assert ctx.jobs.get(job_id)["status"] == "ready"
    assert ctx.store.lookup(served["qhash"])[0]["answer_id"] == served["answer_id"]


def test_an_answer_its_passages_do_not_support_is_never_served_and_their_sentences_are(ctx, smollm2):  # noqa: F811
    item = planned(ctx, QUESTION)
    invented = Generation("Refunds take 90 days and are paid in gold coins by our partner bank.", 20, 15, -0.2,
                          "stop")
    served = settle(Generated(item, invented, "quick", 900.0), smollm2)
    assert served["answer"] == "You can ask for a refund within 30 days of your purchase. Open Orders, pick the " \
                               "order and choose Request refund. The money goes back to your card."
    assert served["grounding"] == "grounded" and served["sources"][0]["document"] == "refunds.md"
    generated = stored(ctx, served["answer_id"] - 1)
    assert (generated.text, generated.review) == (invented.text, "unsupported")
    assert generated.quality_components["unsupported"] < 1.0
    assert ctx.store.lookup(item.question.qhash)[0]["answer_id"] == served["answer_id"]


def test_an_answer_its_passages_support_is_served_as_generated(ctx, smollm2):  # noqa: F811
    item = planned(ctx, QUESTION)
    faithful = Generation("You can ask for a refund within 30 days of your purchase.", 20, 12, -0.1, "stop")
    served = settle(Generated(item, faithful, "quick", 900.0), smollm2)
    assert served["answer"] == faithful.text
    assert stored(ctx, served["answer_id"]).quality_components["groundedness"] == 1.0


def test_a_generation_whose_passages_changed_meanwhile_is_done_again_and_nothing_is_stored(ctx, smollm2):  # noqa: F811
    item = planned(ctx, QUESTION)
    import_documents(ctx, embedder_for(ctx.settings, threads=None),
                     [Document("refunds.md", "# Refunds\n\nYou can ask for a refund within 14 days.")])
    faithful = Generation("You can ask for a refund within 30 days of your purchase.", 20, 12, -0.1, "stop")
    assert settle(Generated(item, faithful, "quick", 900.0), smollm2) is None  # sent again, pending
    assert ctx.jobs.get(item.request.job_id)["status"] == "pending"
    assert not ctx.store.has_answer(item.question.id)


def test_a_korean_question_is_answered_from_korean_documents_by_a_model_that_writes_no_korean(ctx, smollm2):  # noqa: F811
    article = Document("포인트.md", "# 포인트\n\n포인트는 적립일로부터 1년 후에 소멸됩니다. 소멸 30일 전에 문자로 알려 드립니다.")
    import_documents(ctx, embedder_for(ctx.settings, threads=None), [article])
    job_id, question_id = enqueue(ctx, "포인트는 언제 소멸되나요?")
    [served] = answer_questions(ctx, smollm2, [JobRequest(question_id, job_id)])
    assert served["answer"] == "포인트는 적립일로부터 1년 후에 소멸됩니다. 소멸 30일 전에 문자로 알려 드립니다."
    assert (served["grounding"], served["sources"][0]["document"]) == ("grounded", "포인트.md")
    assert stored(ctx, served["answer_id"]).model == "extractive"


def test_extractive_grounded_answers_never_run_the_model(config):
    ctx = Context(load_settings(**config, grounded_answers="extractive"))
    import_documents(ctx, embedder_for(ctx.settings, threads=None), [REFUNDS, SHIPPING])
    job_id, question_id = enqueue(ctx, QUESTION)
    [served] = answer_questions(ctx, None, [JobRequest(question_id, job_id)])  # no model at all
    assert served["answer"].startswith("You can ask for a refund within 30 days")
    assert served["sources"][0]["document"] == "refunds.md"
    ctx.close()
