"""Finding the passages that answer a question, and telling whether any does.

Each passage is scored two ways: dense (the cosine of the question's and the passage's vectors, from
the semantic tier's embedder: a Korean question meets Korean passages only) and lexical (BM25 over
content words, precache.documents.words). Each score is scaled to [0, 1] over the tenant's passages
and they are mixed, dense weighing DENSE_WEIGHT; a document ranks by its best passage. (On StackFAQ,
bench/grounding.py: dense alone 96.3 %, this mix 96.8 %, reciprocal-rank fusion 93.5 %: BM25 alone is
far weaker on paraphrased questions, 83.0 %, so it breaks ties rather than votes.)

The relevance check is the passage's cosine: below the embedder's calibrated least relevance
(PRECACHE_PASSAGE_RELEVANCE for English, the Korean embedder's `passage_relevance` in
precache/data/calibration.yaml) a passage does not answer the question, however it ranks.
bench/grounding.py measures both against whole-document cosine search.

A process keeps each tenant's passages in memory (`library`) and reloads them when the tenant's
passages change (their count or newest id moved); passages stored under another embedder are embedded
again on load.
"""

import logging
import threading
from dataclasses import dataclass

import bm25s
import numpy as np
from sqlalchemy import func, select, update

from precache.db import session_scope
from precache.documents.words import content_words
from precache.language import KOREAN, language_of
from precache.models import Document, Passage
from precache.semantic import calibration

log = logging.getLogger(__name__)
DENSE_WEIGHT = 0.8  # of the mix of scaled dense and lexical scores


@dataclass(frozen=True)
class Found:
    """A passage found for a question: where it is from, its text, its cosine to the question, its fused score."""

    passage_id: int
    document_id: int
    document: str
    heading: str
    text: str
    similarity: float
    score: float

    def source(self) -> dict:
        """The asker's view of the passage: {"document", "excerpt", "score"} (score: its cosine)."""
        return {"document": self.document, "excerpt": self.text, "score": round(self.similarity, 4)}


def embedded_text(document: str, heading: str, text: str) -> str:
    """Return what is embedded and indexed of a passage: its document's title and heading, then its text."""
    title = document.rsplit("/", 1)[-1].rsplit(".", 1)[0].replace("-", " ").replace("_", " ")
    return ". ".join(part for part in (title, heading, text) if part)


class Library:
    """The passages of one tenant, searchable."""

    def __init__(self, rows: list[tuple], vectors: np.ndarray, stamp: tuple):
        self.rows = rows  # (passage id, document id, document name, heading, text)
        self.vectors = vectors
        self.stamp = stamp
        self.bm25 = None
        if rows:
            self.bm25 = bm25s.BM25()
            self.bm25.index([content_words(embedded_text(*row[2:])) or ["∅"] for row in rows], show_progress=False)

    def __len__(self) -> int:
        return len(self.rows)

    def search(self, question: str, vector: np.ndarray, k: int = 3) -> list[Found]:
        """Return the best passage of each of the `k` best documents for a question, best first."""
        if not self.rows:
            return []
        similarity = self.vectors @ np.asarray(vector, dtype=np.float32)
        words = content_words(question)
        lexical = self.bm25.get_scores(words) if words else np.zeros(len(similarity))
        fused = DENSE_WEIGHT * _scaled(similarity) + (1 - DENSE_WEIGHT) * _scaled(lexical)
        found, seen = [], set()
        for i in np.argsort(-fused, kind="stable"):
            passage_id, document_id, document, heading, text = self.rows[i]
            if document_id in seen:
                continue
            seen.add(document_id)
            found.append(Found(passage_id, document_id, document, heading, text, float(similarity[i]),
                               float(fused[i])))
            if len(found) == k:
                break
        return found


def _scaled(scores: np.ndarray) -> np.ndarray:
    """Return scores scaled to [0, 1] (all 0 when they are all equal)."""
    scores = np.asarray(scores, dtype=np.float64)
    spread = scores.max() - scores.min()
    return (scores - scores.min()) / spread if spread > 0 else np.zeros(len(scores))


def least_relevance(settings, question: str) -> float:
    """Return the least cosine at which a passage answers this question, on its language's embedder's scale."""
    if language_of(question) == KOREAN and settings.korean_embedding_model:
        found = calibration.passage_relevance(settings.korean_embedding_model)
        if found is not None:
            return found
    return settings.passage_relevance


def relevant(settings, question: str, found: list[Found]) -> list[Found]:
    """Return the passages found that pass the relevance check, best first."""
    floor = least_relevance(settings, question)
    return [passage for passage in found if passage.similarity >= floor]


_libraries: dict[tuple[str, str, str], Library] = {}
_lock = threading.Lock()


def library(sessions, embedder, tenant: str) -> Library:
    """Return this process's library of a tenant's passages, reloaded when they changed since it was loaded."""
    model = embedder.name()
    key = (str(sessions.kw["bind"].url), tenant, model)
    stamp = _stamp(sessions, tenant)
    with _lock:
        held = _libraries.get(key)
        if held is not None and held.stamp == stamp:
            return held
        loaded = _load(sessions, embedder, model, tenant, stamp)
        _libraries[key] = loaded
        return loaded


def has_documents(sessions, tenant: str) -> bool:
    """Tell whether a tenant has imported documents."""
    with sessions() as session:
        return session.scalar(select(Document.id).where(Document.tenant == tenant).limit(1)) is not None


def _stamp(sessions, tenant: str) -> tuple:
    """What changes whenever the tenant's passages do: their count and newest id (ids only grow)."""
    query = (select(func.count(Passage.id), func.max(Passage.id)).join(Document)
             .where(Document.tenant == tenant))
    with sessions() as session:
        return tuple(session.execute(query).one())


def _load(sessions, embedder, model: str, tenant: str, stamp: tuple) -> Library:
    query = (select(Passage.id, Passage.document_id, Document.name, Passage.heading, Passage.text, Passage.model,
                    Passage.vector).join(Document).where(Document.tenant == tenant)
             .order_by(Passage.document_id, Passage.ordinal))
    with sessions() as session:
        found = session.execute(query).all()
    rows = [tuple(row[:5]) for row in found]
    vectors = np.zeros((len(found), embedder.dim), dtype=np.float32)
    stale = []
    for i, row in enumerate(found):
        if row.model == model:
            vectors[i] = np.frombuffer(row.vector, dtype=np.float32)
        else:
            stale.append(i)
    if stale:  # the embedder changed since they were imported
        log.info("embedding %d passages of tenant %r again for %s", len(stale), tenant, model)
        fresh = embedder.encode([embedded_text(*rows[i][2:]) for i in stale])
        vectors[stale] = fresh
        with session_scope(sessions) as session:
            for i, vector in zip(stale, fresh):
                session.execute(update(Passage).where(Passage.id == rows[i][0])
                                .values(model=model, vector=np.asarray(vector, dtype="<f4").tobytes()))
    log.info("loaded %d passages of tenant %r", len(rows), tenant)
    return Library(rows, vectors, stamp)


def ground(ctx, embedder, question: str) -> tuple[str | None, list[Found]]:
    """Return how an answer to a question of this tenant is to be grounded, and the passages it is written from:
    (None, []) without documents (GROUNDING auto) or with GROUNDING off; ("grounded", the relevant passages);
    else ("not_in_documents", []) where grounding is required, ("ungrounded", []) where it is preferred."""
    mode = ctx.settings.grounding
    if mode == "off":
        return None, []
    passages = library(ctx.sessions, embedder, ctx.tenant)
    if not len(passages) and mode == "auto":
        return None, []
    found = relevant(ctx.settings, question, passages.search(question, embedder.encode_one(question),
                                                              ctx.settings.grounding_passages))
    if found:
        return "grounded", found
    return ("ungrounded" if mode == "preferred" else "not_in_documents"), []


def passages_current(sessions, passage_ids: list[int]) -> bool:
    """Tell whether these passages are all still stored (a changed document's passages are replaced)."""
    with sessions() as session:
        held = session.scalar(select(func.count(Passage.id)).where(Passage.id.in_(passage_ids)))
    return held == len(set(passage_ids))
