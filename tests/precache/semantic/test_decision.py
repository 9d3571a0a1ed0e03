"""The decision: answers, not phrasings, are scored; an ask near all of an answer's phrasings is surer."""

import numpy as np
import pytest

from precache.semantic.index import SemanticIndex
from precache.semantic.store import index_questions
from tests.precache.semantic.test_index import HashingEmbedder, _store_answered


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
