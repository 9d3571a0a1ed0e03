"""The semantic tier: guards, exact and hnswlib search, refresh across processes, and matching."""

import hashlib
import re

import numpy as np
import pytest

from precache import keys
from precache.config import load_settings
from precache.context import Context
from precache.models import QuestionEmbedding
from precache.normalize import normalize, question_hash
from precache.semantic.guards import compatible
from precache.semantic.index import SemanticIndex
from precache.semantic.store import index_question, index_questions
from precache.semantic.vectors import VectorSearch


class HashingEmbedder:
    """A tiny deterministic embedder: hashed bag of words, normalised (no model needed)."""

    dim = 64

    def encode(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@pytest.mark.parametrize(
    ("guard", "question", "near_miss", "paraphrase"),
    [
        ("negation", "Can I use my card abroad?", "Can't I use my card abroad?",
         "How can I use my card in another country?"),
        ("number", "How do I prepare for NEET 2017 in 6 months?", "How do I prepare for NEET 2017 in 4 months?",
         "What is the best way to get ready for NEET 2017 in 6 months?"),
        ("date", "Can I get a refund for a purchase made on Monday?",
         "Can I get a refund for a purchase made on Friday?", "Is a refund possible for what I bought on Monday?"),
        ("amount", "Is there a fee for sending $500 abroad?", "Is there a fee for sending €500 abroad?",
         "What does it cost to send $500 to another country?"),
        ("amount", "Why was I charged £5 for a transfer?", "Why was I charged £10 for a transfer?",
         "What is the £5 charge on my transfer?"),
        ("entity", "Where can I buy Guinness Surger cans in the UK?", "Where can I buy Guinness Surger cans in the US?",
         "Which UK shops sell guinness surger cans?"),
        ("question", "Why do you need to check my identity?", "What do I need to verify my identity?",
         "Why is my identity being checked?"),
        ("question", "How come I was charged a fee for my transfer?", "How much is the fee for my transfer?",
         "Why was I charged a fee for my transfer?"),
    ],
)
def test_guard_vetoes_a_near_identical_pair_and_passes_a_paraphrase(guard, question, near_miss, paraphrase):
    assert compatible(question, near_miss) == guard
    assert compatible(paraphrase, question) is None


def test_negation_as_mere_wording_passes():
    assert compatible("My card still hasn't arrived", "When will my new card arrive?") is None


def test_a_reason_asked_of_a_statement_or_of_another_topic_passes():
    # A statement asks for a reason as often as for a way; a "why" and a "how" on other words are the
    # similarity's to judge, not this guard's.
    assert compatible("Why was my card declined?", "My card got declined at the shop") is None
    assert compatible("Why do you need to check my identity?", "How do I order a new card?") is None


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_exact_and_hnswlib_search_agree():
    data, queries = _unit(600, 32, 1), _unit(25, 32, 2)
    exact, ann = VectorSearch(32, ann_min_size=10**9), VectorSearch(32, ann_min_size=100)
    for start in range(0, 600, 50):  # hnswlib takes over once the index grows past its minimum size
        exact.add(data[start:start + 50])
        ann.add(data[start:start + 50])
    assert ann.uses_ann and not exact.uses_ann
    for query in queries:
        (ep, es), (ap, as_) = exact.search(query, 5), ann.search(query, 5)
        assert list(ep) == list(ap)
        np.testing.assert_allclose(es, as_, atol=1e-5)


def _store_answered(ctx, text: str, answer: str) -> int:
    normalized = normalize(text)
    qid = ctx.store.ensure_question(text, normalized, question_hash(normalized), is_faq=True)
    ctx.store.save_answer(qid, answer, curated=True, quality=1.0)
    return qid


def test_refresh_picks_up_a_question_indexed_elsewhere(ctx, config):
    embedder = HashingEmbedder()
    index = SemanticIndex.from_settings(ctx.settings)
    assert index.refresh(ctx) == 0 and len(index) == 0
    other = Context(load_settings(**config))  # another process: its own connections, same SQL and Redis
    try:
        qid = _store_answered(other, "How do I reset my password?", "Open Settings, then Security.")
        assert index_question(other, embedder, qid) is True
        assert index_question(other, embedder, qid) is False  # stored once
    finally:
        other.close()
    assert index.refresh(ctx) == 1
    assert index.refresh(ctx) == 0  # version unchanged: nothing reloaded
    asked = "how do i reset my password please"
    found = index.match(asked, embedder.encode([asked])[0])
    assert found is not None and found.question_id == qid
    assert found.matched_question == "How do I reset my password?"
    assert 0.75 <= found.similarity <= 1.0 and found.confidence >= found.similarity


def test_index_questions_stores_each_once_and_bumps_the_version(ctx):
    ids = [_store_answered(ctx, f"What are the opening hours of shop {name}?", "9 to 5.") for name in "ABC"]
    assert index_questions(ctx, HashingEmbedder(), ids + ids[:1]) == 3
    assert index_questions(ctx, HashingEmbedder(), ids) == 0
    assert int(ctx.redis.get(keys.semantic_version())) == 2
    with ctx.sessions() as session:
        rows = session.query(QuestionEmbedding).all()
    assert {r.question_id for r in rows} == set(ids) and {r.dim for r in rows} == {64}


def test_questions_sharing_a_curated_answer_do_not_compete(ctx):
    embedder = HashingEmbedder()
    ids = [_store_answered(ctx, text, "Tap Card, then Freeze.") for text in
           ("How do I freeze my card?", "How can I freeze my debit card?")]
    index_questions(ctx, embedder, ids)
    index = SemanticIndex.from_settings(ctx.settings)
    index.refresh(ctx)
    asked = "how do i freeze my card now"
    found = index.best(asked, embedder.encode([asked])[0])
    assert found.margin > 0.3  # the other phrasing has the same answer: no rival


def test_match_refuses_what_a_guard_vetoes_and_suggests_it_instead():
    embedder = HashingEmbedder()
    texts = ["Can I use my card abroad?", "How do I order a new card?"]
    index = SemanticIndex()
    index.add([1, 2], ["h1", "h2"], texts, embedder.encode(texts))
    asked = "Can't I use my card abroad?"
    vector = embedder.encode([asked])[0]
    assert index.match(asked, vector) is None
    assert index.nearest_answers(vector, n=1)[0].matched_question == texts[0]


def test_an_ask_near_all_phrasings_of_an_answer_is_surer_than_one_near_a_single_one():
    phrasings = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0]], dtype=np.float32)
    index = SemanticIndex(threshold=1.1)
    index.add([1, 2], ["h1", "h2"], ["How do I freeze my card?", "Can I block my card for a while?"], phrasings,
              ["freeze", "freeze"])
    centre = np.array([0.894, 0.447, 0.0], dtype=np.float32)  # as close to the first phrasing as `aside`,
    aside = np.array([0.894, -0.447, 0.0], dtype=np.float32)  # but far from the second
    near_all, near_one = index.best("freeze my card", centre), index.best("freeze my card", aside)
    assert near_all.similarity == pytest.approx(near_one.similarity, abs=1e-3)
    assert near_all.confidence > near_one.confidence
    assert index.match("freeze my card", centre) is not None and index.match("freeze my card", aside) is None


def _axis(*weights: float) -> np.ndarray:
    vector = np.zeros(6, dtype=np.float32)
    vector[: len(weights)] = weights
    return vector / np.linalg.norm(vector)


# Near the first FAQ entry only: similarity 0.755 and a wide margin, confidence 0.755 + 0.7 x 0.3 = 0.965.
ASKED = _axis(0.755, 0, 0, np.sqrt(1 - 0.755**2))


def test_a_sparse_faq_is_served_below_the_threshold_and_a_dense_one_is_not():
    texts = ["How do I reset my password?", "Where is my parcel?", "Can I pay by cheque?"]
    sparse = SemanticIndex(threshold=0.98, threshold_floor=0.9)
    sparse.add([1, 2, 3], ["h1", "h2", "h3"], texts, np.stack([_axis(1), _axis(0, 1), _axis(0, 0, 1)]),
               ["faq:reset", "faq:parcel", "faq:cheque"])
    sparse.remeasure()
    # No entry comes near another: no wrong match to fear, the floor applies.
    assert sparse.curated_wrong == float("-inf") and sparse.threshold_of("faq:reset") == 0.9
    found = sparse.match("reset my password please", ASKED)
    assert found is not None and found.matched_question == texts[0] and 0.9 <= found.confidence < 0.98

    dense = SemanticIndex(threshold=0.98, threshold_floor=0.9)
    dense.add([1, 2, 3, 4], ["h1", "h2", "h3", "h4"], texts + ["When will my parcel come?"],
              np.stack([_axis(1), _axis(0, 1), _axis(0, 0, 1), _axis(0, 0.97, 0, 0, 0.243)]),
              ["faq:reset", "faq:parcel", "faq:cheque", "faq:parcel-date"])
    dense.remeasure()
    # Two entries sit close together: asked without its own entry, each matches the other confidently.
    assert dense.curated_wrong > 0.98 and dense.threshold_of("faq:reset") == 0.98
    assert dense.best("reset my password please", ASKED).confidence == pytest.approx(found.confidence)
    assert dense.match("reset my password please", ASKED) is None


def test_generated_answers_keep_the_threshold():
    texts = ["How do I reset my password?", "Where is my parcel?", "Can I pay by cheque?"]
    index = SemanticIndex(threshold=0.98, threshold_floor=0.9)
    index.add([1, 2, 3], ["h1", "h2", "h3"], texts, np.stack([_axis(1), _axis(0, 1), _axis(0, 0, 1)]))
    index.remeasure()
    assert index.threshold_of("h1") == 0.98
    assert index.match("reset my password please", ASKED) is None


def test_generated_answers_beside_an_faq_entry_do_not_crowd_it_out():
    # The worker answered a miss near the first entry: a generated answer of its own, close to the entry.
    texts = ["How do I reset my password?", "Where is my parcel?", "How can I reset my password now?"]
    vectors = np.stack([_axis(1), _axis(0, 1), _axis(0.95, 0, 0, 0, 0.312)])
    index = SemanticIndex(threshold=0.98)
    index.add([1, 2], ["h1", "h2"], texts[:2], vectors[:2], ["faq:reset", "faq:parcel"])
    asked = _axis(0.9, 0, 0, 0.436)  # a new paraphrase: 0.90 from the entry, 0.86 from the generated one
    cold = index.match("I need to reset my password", asked)
    assert cold is not None and cold.matched_question == texts[0]
    index.add([3], ["h3"], texts[2:], vectors[2:], ["h3"])
    warm = index.match("I need to reset my password", asked)
    assert warm is not None and warm.matched_question == texts[0]
    assert warm.confidence == pytest.approx(cold.confidence)
    # Nearest to the generated answer: the FAQ entry stays its rival.
    generated = index.best("How can I reset my password now?", vectors[2])
    assert generated.matched_question == texts[2] and generated.margin == pytest.approx(1 - 0.95, abs=0.01)


def test_the_faq_measure_is_off_by_default():
    texts = ["How do I reset my password?", "Where is my parcel?", "Can I pay by cheque?"]
    index = SemanticIndex.from_settings(load_settings())
    index.add([1, 2, 3], ["h1", "h2", "h3"], texts, np.stack([_axis(1), _axis(0, 1), _axis(0, 0, 1)]),
              ["faq:reset", "faq:parcel", "faq:cheque"])
    index.remeasure()
    assert index.threshold_of("faq:reset") == index.threshold == 0.97
    assert index.match("reset my password please", ASKED) is None


def test_refresh_measures_the_imported_faq(ctx):
    ctx.settings.semantic_threshold_floor = 0.9
    embedder = HashingEmbedder()
    ids = [_store_answered(ctx, text, answer) for text, answer in
           [("What are your opening hours?", "9 to 5."), ("How do I return a parcel?", "Print the label."),
            ("Which cards do you accept?", "Visa and Mastercard.")]]
    index_questions(ctx, embedder, ids)
    index = SemanticIndex.from_settings(ctx.settings)
    assert index.threshold_of("faq:x") == ctx.settings.semantic_threshold  # nothing measured yet
    index.refresh(ctx)  # measures in the background: the ask that refreshed does not wait for it
    index.settle()
    assert all(key.startswith("faq:") for key in index.answer_keys)
    assert index.threshold_of(index.answer_keys[0]) == ctx.settings.semantic_threshold_floor
