"""Question embeddings in SQL: stored once per question, the version bumped for the web processes."""

from precache import keys
from precache.models import QuestionEmbedding
from precache.semantic.store import index_questions
from tests.precache.semantic.test_index import HashingEmbedder, _store_answered


def test_index_questions_stores_each_once_and_bumps_the_version(ctx):
    ids = [_store_answered(ctx, f"What are the opening hours of shop {name}?", "9 to 5.") for name in "ABC"]
    assert index_questions(ctx, HashingEmbedder(), ids + ids[:1]) == 3
    assert index_questions(ctx, HashingEmbedder(), ids) == 0
    assert int(ctx.redis.get(keys.semantic_version())) == 2
    with ctx.sessions() as session:
        rows = session.query(QuestionEmbedding).all()
    assert {r.question_id for r in rows} == set(ids) and {r.dim for r in rows} == {64}
