"""The semantic index: refresh across processes, and matching with the guards on."""

import hashlib
import re

import numpy as np

from precache.config import load_settings
from precache.context import Context
from precache.normalize import normalize, question_hash
from precache.semantic.index import SemanticIndex
from precache.semantic.store import index_question


class HashingEmbedder:
    """A tiny deterministic embedder: hashed bag of words, normalised (no model needed)."""

    dim = 64

    def encode(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def _store_answered(ctx, text: str, answer: str) -> int:
    normalized = normalize(text)
    qid = ctx.store.ensure_question(text, normalized, question_hash(normalized))
    ctx.store.add_faq(qid)
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


def test_match_refuses_what_a_guard_vetoes_and_suggests_it_instead():
    embedder = HashingEmbedder()
    texts = ["Can I use my card abroad?", "How do I order a new card?"]
    index = SemanticIndex()
    index.add([1, 2], ["h1", "h2"], texts, embedder.encode(texts))
    asked = "Can't I use my card abroad?"
    vector = embedder.encode([asked])[0]
    assert index.match(asked, vector) is None
    assert index.nearest_answers(vector, n=1)[0].matched_question == texts[0]
