"""Reply jobs (worker/replies.py): a follow-up made standalone, an answer kept nowhere and streamed; a failure
finishes the reply as failed, so the web falls back and never hangs. Real Redis, SQL and job records."""

import time

from sqlalchemy import func, select

from precache.models import Question
from precache.tokens import follow
from worker.backends import Backend, BackendUnavailable, Generation
from worker.replies import reply

FOLLOW_UP = [{"role": "user", "content": "How do I reset my password?"},
             {"role": "assistant", "content": "Open Settings, choose Security, then Reset password."},
             {"role": "user", "content": "How long does that take?"}]


class Scripted(Backend):
    """A backend that gives a set text, a piece at a time through on_token as the streaming backends do, or
    fails as an endpoint that is down does; it records the chats it was given."""

    name = "scripted"

    def __init__(self, pieces: list[str], fail: Exception | None = None):
        super().__init__(settings=None)
        self.pieces, self.fail, self.chats = pieces, fail, []

    def load(self) -> None:
        pass

    def generate(self, chats, max_new_tokens, temperature=0.0, seed=0, on_token=None, stop=None):
        self.chats += chats
        if self.fail is not None:
            raise self.fail
        for piece in self.pieces:
            if on_token is not None:
                on_token(0, piece)
        return [Generation("".join(self.pieces), 20, len(self.pieces), -0.2, "stop")]


def test_an_answer_kept_nowhere_is_streamed_and_its_reply_holds_the_text(ctx):
    reply_id = ctx.jobs.send_reply("answer", "What is an API?")
    backend = Scripted([" An API", " is a contract", " between programs."])
    assert reply(ctx, backend, reply_id, "answer", "What is an API?") == {"kind": "answer", "tokens": 3}
    record = ctx.jobs.get(reply_id)
    assert (record["status"], record["text"]) == ("ready", "An API is a contract between programs.")
    streamed = list(follow(ctx.redis, reply_id, time.monotonic() + 30))  # pieces coalesced every 50 ms
    assert "".join(streamed) == " An API is a contract between programs."
    assert backend.chats[0][-1]["content"].endswith("What is an API?")
    with ctx.sessions() as session:  # no-store: no question, no answer
        assert session.scalar(select(func.count()).select_from(Question)) == 0


def test_a_follow_up_is_rewritten_from_the_conversation(ctx):
    reply_id = ctx.jobs.send_reply("rewrite", FOLLOW_UP)
    backend = Scripted(["Standalone question: How long does a password reset take?"])
    assert reply(ctx, backend, reply_id, "rewrite", FOLLOW_UP)["kind"] == "rewrite"
    assert ctx.jobs.get(reply_id)["text"] == "How long does a password reset take?"
    assert "How long does that take?" in backend.chats[0][-1]["content"]  # the model saw the conversation


def test_a_backend_that_fails_finishes_the_reply_as_failed_and_ends_its_stream(ctx):
    reply_id = ctx.jobs.send_reply("answer", "What is an API?")
    backend = Scripted([], fail=BackendUnavailable("endpoint http://127.0.0.1:9/v1 refused the connection"))
    assert reply(ctx, backend, reply_id, "answer", "What is an API?") == {"failed": "answer"}
    record = ctx.jobs.get(reply_id)
    assert record["status"] == "failed" and record["error"].startswith("BackendUnavailable: endpoint")
    assert list(follow(ctx.redis, reply_id, time.monotonic() + 30)) == []  # ended at once, not at its deadline


def test_an_unknown_kind_of_reply_fails_without_the_model(ctx):
    reply_id = ctx.jobs.send_reply("poem", "roses")
    backend = Scripted(["never"])
    assert reply(ctx, backend, reply_id, "poem", "roses") == {"failed": "poem"}
    assert "unknown reply kind 'poem'" in ctx.jobs.get(reply_id)["error"] and backend.chats == []


def test_an_answer_kept_nowhere_is_grounded_in_the_tenants_documents(ctx):
    from precache.documents.importing import import_documents
    from precache.documents.reading import Document
    from precache.semantic.embedders import embedder_for

    shop = ctx.for_tenant("shop")
    import_documents(shop, embedder_for(ctx.settings, threads=None),
                     [Document("refunds.md", "# Refunds\n\nYou can ask for a refund within 30 days.")])
    backend = Scripted(["Within ", "30 days."])
    reply_id = shop.jobs.send_reply("answer", "How long do I have to ask for a refund?")
    assert reply(shop, backend, reply_id, "answer", "How long do I have to ask for a refund?")["tokens"] == 2
    assert "You can ask for a refund within 30 days." in backend.chats[0][-1]["content"]  # from its passage
    outside = shop.jobs.send_reply("answer", "What is the capital of France?")
    assert reply(shop, backend, outside, "answer", "What is the capital of France?")["tokens"] == 0
    assert len(backend.chats) == 1  # not the model's memory: the not-in-documents answer
    assert shop.jobs.get(outside)["text"] == ctx.settings.not_in_documents_answer
