"""Grounded answers end to end: `precache docs import` on a folder, a real worker with the default model,
gunicorn. Answers cite their articles, out-of-scope questions get the not-in-documents answer, and a
changed article takes its old answer out of service at once and is answered from the new text."""

import time
from pathlib import Path

import pytest

from precache.documents.words import content_words
from tests.integration.conftest import running_stack

pytestmark = pytest.mark.model

NOT_IN_DOCUMENTS = "Our help center does not cover that. Please write to the support team."
ARTICLES = {
    "account/password-reset.md": "# Resetting your password\n\nOpen the sign-in page and choose Forgot password. "
    "Enter the e-mail address of your account. We send you a reset link that works for one hour. Follow the "
    "link and type your new password twice.",
    "billing/refunds.md": "# Refunds\n\nYou can ask for a refund within 30 days of your purchase. Open Orders, "
    "pick the order and choose Request refund. The money goes back to the card you paid with within five "
    "business days.",
    "shipping/delivery-times.md": "# Delivery times\n\nStandard shipping takes three to five business days. "
    "Express shipping arrives the next business day when you order before noon. You get a tracking number by "
    "e-mail as soon as the parcel leaves our warehouse.",
}
REFUNDS_CHANGED = ("# Refunds\n\nYou can ask for a refund within 14 days of your purchase. Refunds are sent "
                   "as store credit, which never expires. Open Orders, pick the order and choose Request refund.")


def write(folder: Path, articles: dict[str, str]) -> None:
    for name, text in articles.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")


def answered(stack, question: str, timeout: float = 180) -> dict:
    """Ask until the answer is a ready one (the first ask queues it); return its body."""
    body = stack.ask(question, wait_ms=20000).json()
    if body["status"] == "pending":
        body = stack.wait_job(body["job_id"], timeout)
    assert body["status"] == "ready", body
    return body


def supported(answer: str, article: str) -> float:
    words = set(content_words(answer))
    return len(words & set(content_words(article))) / len(words)


@pytest.fixture(scope="module")
def grounded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("documents")
    # The shipped quality gate (the stack's default turns it off for plumbing tests); groundedness applies anyway.
    with running_stack("sqlite", tmp, not_in_documents_answer=NOT_IN_DOCUMENTS, llm_max_tokens_quick=64,
                       quality_threshold=0.5) as stack:
        write(tmp / "help", ARTICLES)
        imported = stack.cli("docs", "import", str(tmp / "help"))
        assert imported.returncode == 0, imported.stderr
        assert "3 added" in imported.stdout
        yield stack, tmp / "help"


def test_an_answer_cites_its_article_and_says_what_the_article_says(grounded):
    stack, _ = grounded
    body = answered(stack, "How can I reset my password?")
    assert body["grounded"] is True
    assert body["sources"][0]["document"] == "account/password-reset.md"
    assert body["sources"][0]["excerpt"] in ARTICLES["account/password-reset.md"]
    assert supported(body["answer"], ARTICLES["account/password-reset.md"]) >= 0.7, body["answer"]
    again = stack.ask("How can I reset my password?").json()  # a cached hit carries the same sources
    assert (again["source"], again["sources"], again["grounded"]) == ("exact", body["sources"], True)


def test_questions_the_documents_do_not_cover_get_the_configured_answer_and_no_sources(grounded):
    stack, _ = grounded
    for question in ("What is the capital of France?", "Can you write me a poem about the sea?"):
        body = answered(stack, question)
        assert (body["answer"], body["grounded"], body["sources"]) == (NOT_IN_DOCUMENTS, False, []), question


def test_a_changed_article_stops_its_old_answer_at_once_and_the_new_text_is_cited(grounded):
    stack, folder = grounded
    question = "How long do I have to ask for a refund?"
    before = answered(stack, question)
    assert before["sources"][0]["document"] == "billing/refunds.md"
    assert "30 days" in before["sources"][0]["excerpt"]
    write(folder, {"billing/refunds.md": REFUNDS_CHANGED})
    imported = stack.cli("docs", "import", str(folder))
    assert imported.returncode == 0, imported.stderr
    assert "1 updated, 2 unchanged" in imported.stdout
    deadline = time.monotonic() + 180
    while True:  # from the import on, the old text is never served; the new one comes within 180 s
        body = stack.ask(question).json()
        assert before["answer"] != body["answer"] or body["source"] == "fallback", body
        assert all("30 days" not in source["excerpt"] for source in body.get("sources", [])), body
        if body["status"] == "ready":
            break
        assert time.monotonic() < deadline, "the changed article's question was not answered again in 180 s"
        time.sleep(1)
    assert body["grounded"] is True
    assert "14 days" in body["sources"][0]["excerpt"]
