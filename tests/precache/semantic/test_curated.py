"""Curated self-measurement: a sparse FAQ is served below the threshold, a dense one and generated answers are not."""

import numpy as np
import pytest

from precache.config import load_settings
from precache.semantic.index import SemanticIndex
from precache.semantic.store import index_questions
from tests.precache.semantic.test_index import HashingEmbedder, _store_answered


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
