"""A new embedder: every indexed question and recorded feedback is embedded again under it, never mixed."""

import numpy as np
import pytest

from precache import keys
from precache.config import load_settings
from precache.context import Context
from precache.db import session_scope
from precache.models import Feedback, QuestionEmbedding
from precache.semantic.embedders import embedder_for, embedding_key
from precache.semantic.index import SemanticIndex
from precache.semantic.reembed import pending, reembed
from precache.semantic.store import index_questions
from tests.precache.semantic.test_index import _store_answered

pytestmark = pytest.mark.model

FAQ = [("비밀번호를 어떻게 재설정하나요?", "설정 > 보안에서 재설정하세요."), ("배송은 얼마나 걸리나요?", "2~3일 걸립니다."),
       ("How do I reset my password?", "Open Settings, then Security.")]


def test_questions_and_feedback_of_the_old_embedder_are_embedded_again_under_the_new(config):
    old = Context(load_settings(**config, korean_embedding_model=""))  # before: MiniLM embedded Korean too
    ids = [_store_answered(old, q, a) for q, a in FAQ]
    index_questions(old, embedder_for(old.settings, threads=None), ids)
    with session_scope(old.sessions) as session:
        session.add(Feedback(question="비밀번호 재설정 방법", qhash="x", helpful=False, offered={}, asker="a",
                             model=embedding_key(old.settings), vector=np.ones(384, "<f4").tobytes()))
    old.close()

    ctx = Context(load_settings(**config))  # the shipped default: multilingual-e5-small embeds Korean
    index = SemanticIndex.from_settings(ctx.settings)
    index.refresh(ctx)
    assert len(index) == 0  # the old vectors are not this embedder's: never mixed in
    assert pending(ctx) == (sorted(ids), 1)
    epoch = ctx.redis.get(keys.feedback_epoch())

    done = reembed(ctx, embedder_for(ctx.settings, threads=None))
    assert done == {"embedder": embedding_key(ctx.settings), "questions": 3, "feedback": 1, "left": 0}
    assert pending(ctx) == ([], 0) and ctx.redis.get(keys.feedback_epoch()) != epoch
    with ctx.sessions() as session:
        models = {row.model for row in session.query(QuestionEmbedding)}
        feedback = session.query(Feedback).one()
    assert models == {"all-MiniLM-L6-v2", embedding_key(ctx.settings)}  # the old rows are kept
    assert feedback.model == embedding_key(ctx.settings) and len(feedback.vector) == 4 * 768

    index.refresh(ctx)
    asked = "비밀번호 재설정 방법 알려주세요"
    found = index.match(asked, embedder_for(ctx.settings).encode_one(asked))
    assert found is not None and found.matched_question == FAQ[0][0]
    ctx.close()


def test_a_run_with_a_budget_does_a_slice_and_says_what_is_left(ctx):
    ids = [_store_answered(ctx, f"매장 {n}호점은 몇 시에 여나요?", "아홉 시에 엽니다.") for n in range(3)]
    with session_scope(ctx.sessions) as session:
        session.add_all(QuestionEmbedding(question_id=i, model="old-model", dim=2, vector=b"\0" * 8) for i in ids)
    done = reembed(ctx, embedder_for(ctx.settings, threads=None), budget_s=0.0)
    assert done["questions"] == 0 and done["left"] == 3  # out of time before the first batch: all left
    assert reembed(ctx, embedder_for(ctx.settings, threads=None))["left"] == 0
