"""The answer store: SQL is the source of truth, Redis the hot cache in front of it."""

import json
import logging
from collections.abc import Callable
from datetime import timedelta, timezone

import redis
from sqlalchemy import case, func, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from precache import keys
from precache.db import session_scope
from precache.models import (Answer, AnswerDocument, FaqQuestion, HotCacheDrop, LearnedPhrasing, PredictedQuestion,
                             Question, utcnow)
from precache.normalize import namespace_id

log = logging.getLogger(__name__)


def _epoch(moment) -> float | None:
    if moment is None:
        return None
    # SQLite hands timestamps back without their zone; they are stored in UTC.
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def answer_payload(answer: Answer, question: Question) -> dict:
    """Return the cacheable, JSON-able view of an answer."""
    return {
        "answer_id": answer.id,
        "question_id": question.id,
        "qhash": question.qhash,
        "answer": answer.text,
        "quality": answer.quality,
        "matched_question": question.text,
        "level": answer.level,
        "curated": answer.curated,
        "expires_at": _epoch(answer.expires_at),
        "grounding": answer.grounding,
        "sources": answer.sources or [],
    }


def answering_question(qhash: str, tenant: str, visible: Callable):
    """The id of the question whose answers answer this one for this tenant, as a subquery.

    A phrasing that askers of this tenant linked to an answer (confirmed, and nobody retracted) is answered
    by it first, unless the phrasing's own question has a curated or pinned answer (one that `visible(answer)`
    lets this namespace see): feedback never re-points one of those. A paraphrase that predictive precompute
    linked to a canonical question from this tenant's misses, or that is linked for every tenant, is answered
    by the canonical question's answers.
    """
    phrasing, own = aliased(Question), aliased(Answer)
    learned = (select(LearnedPhrasing.target_id).where(LearnedPhrasing.question_id == phrasing.id,
                                                       LearnedPhrasing.tenant == tenant,
                                                       LearnedPhrasing.confirmed_at.is_not(None),
                                                       LearnedPhrasing.retracted_at.is_(None))
               .order_by(LearnedPhrasing.id.desc()).limit(1).correlate(phrasing).scalar_subquery())
    vouched = (select(own.id).where(own.question_id == phrasing.id, own.curated | own.pinned, visible(own),
                                    not_set_aside(own)).correlate(phrasing).exists())
    predicted = (select(PredictedQuestion.canonical_id).where(PredictedQuestion.question_id == phrasing.id,
                                                              PredictedQuestion.tenant == tenant)
                 .correlate(phrasing).scalar_subquery())
    return (select(func.coalesce(case((vouched, None), else_=learned), predicted, phrasing.canonical_id, phrasing.id))
            .where(phrasing.qhash == qhash).scalar_subquery())


def not_set_aside(answer=Answer):
    """The SQL condition of answers nobody set aside: not rejected by an admin, not outdated by a changed document."""
    return answer.review.is_(None) | (answer.review == "approved")


def serving_order() -> tuple:
    """Pinned, then curated, then fresh before expired, then the higher quality (a detailed answer replaces
    the quick one when its quality is at least as high), then the newest."""
    return (
        Answer.pinned.desc(),
        Answer.curated.desc(),
        case((Answer.expires_at > utcnow(), 0), else_=1),
        case((Answer.quality.is_(None), 1), else_=0),
        Answer.quality.desc(),
        case((Answer.level == "detailed", 0), else_=1),
        Answer.created_at.desc(),
    )


def drop_hot_cache(redis_client: redis.Redis) -> int:
    """Delete every hot-cache entry, of every namespace; return how many. SQL refills them on the next asks.

    After a migration that changes how questions are keyed, an entry under an old key could answer
    another question: the hot cache is only a copy, so it goes whole.
    """
    entries = list(redis_client.scan_iter(match=keys.answer("*", "*"), count=1000))
    return sum(redis_client.delete(*entries[i:i + 1000]) for i in range(0, len(entries), 1000))


class AnswerStore:
    """Read and write answers for one namespace (model + prompt version + tenant)."""

    def __init__(self, sessions, redis_client: redis.Redis, settings, tenant: str = ""):
        self.sessions = sessions
        self.redis = redis_client
        self.settings = settings
        self.tenant = tenant
        self.namespace = settings.namespace_for(tenant)
        self.ns = namespace_id(self.namespace)

    def for_tenant(self, tenant: str) -> "AnswerStore":
        """Return the store of another tenant's namespace, on the same connections."""
        return self if tenant == self.tenant else AnswerStore(self.sessions, self.redis, self.settings, tenant)

    def visible(self, answer=Answer):
        """The SQL condition of answers this namespace may see: its own generated ones, its tenant's curated ones."""
        return (answer.namespace == self.namespace) | (answer.curated & (answer.tenant == self.tenant))

    def servable(self):
        """The SQL condition of answers served from cache: visible, not rejected, and good enough or vouched for."""
        vouched = Answer.pinned | Answer.curated | (Answer.review == "approved")
        good = Answer.quality.is_(None) | (Answer.quality >= self.settings.quality_threshold)
        return self.visible() & not_set_aside() & (vouched | good)

    def lookup(self, qhash: str, hot: bool = True) -> tuple[dict, str] | None:
        """Return (answer, "redis" | "sql") for a question hash, refilling Redis on an SQL hit.

        `hot=False`: the hot cache was just read without a hit (the web's exact path), go to SQL.
        """
        cached = self._hot(qhash) if hot else None
        if cached is not None:
            return cached, "redis"
        try:
            payload = self._best_answer(qhash)
        except SQLAlchemyError as exc:  # neither store answers: treat it as not cached, the ladder goes on
            log.warning("database unavailable, no stored answer can be read: %s", exc)
            return None
        if payload is None:
            return None
        self._cache(qhash, payload)
        return payload, "sql"

    def taught_answer(self, qhash: str, asker: str) -> dict | None:
        """The answer this asker linked this phrasing to (a picked suggestion, not confirmed by others yet): served
        to that asker at once, to others once confirmed. None when there is none, or SQL is unavailable."""
        target = (select(LearnedPhrasing.target_id).join(Question, Question.id == LearnedPhrasing.question_id)
                  .where(Question.qhash == qhash, LearnedPhrasing.tenant == self.tenant,
                         LearnedPhrasing.taught_by == asker, LearnedPhrasing.retracted_at.is_(None))
                  .order_by(LearnedPhrasing.id.desc()).limit(1).scalar_subquery())
        query = (select(Answer, Question).join(Question).where(Answer.question_id == target, self.servable())
                 .order_by(*serving_order()).limit(1))
        try:
            with self.sessions() as session:
                row = session.execute(query).first()
        except SQLAlchemyError as exc:
            log.warning("database unavailable, an asker's own link cannot be read: %s", exc)
            return None
        return answer_payload(*row) if row else None

    def _hot(self, qhash: str) -> dict | None:
        """The hot cache's answer; None on a miss or when Redis is unavailable (SQL is read then)."""
        try:
            cached = self.redis.get(keys.answer(self.ns, qhash))
        except redis.RedisError as exc:
            log.warning("hot cache unavailable, reading SQL: %s", exc)
            return None
        return None if cached is None else json.loads(cached)

    def _best_answer(self, qhash: str) -> dict | None:
        query = (
            select(Answer, Question)
            .join(Question)
            .where(Answer.question_id == answering_question(qhash, self.tenant, self.visible))
            .where(self.servable())
            .order_by(*serving_order())
            .limit(1)
        )
        with self.sessions() as session:
            row = session.execute(query).first()
        return answer_payload(*row) if row else None

    def _cache(self, qhash: str, payload: dict) -> None:
        try:
            self.redis.set(keys.answer(self.ns, qhash), json.dumps(payload), ex=self.settings.cache_ttl_s)
        except redis.RedisError as exc:
            log.warning("hot cache unavailable, answer %s only in SQL: %s", payload["answer_id"], exc)

    def ensure_question(self, text: str, normalized: str, qhash: str) -> int:
        """Return the id of the question with this hash, creating it if needed."""
        with self.sessions() as session:
            found = session.scalar(select(Question.id).where(Question.qhash == qhash))
            if found is not None:
                return found
            return _create_question(session, Question(qhash=qhash, text=text, normalized=normalized))

    def add_faq(self, question_id: int, reference: str | None = None) -> None:
        """Make a question part of this tenant's FAQ; a reference given replaces the one it had."""
        with session_scope(self.sessions) as session:
            entry = session.scalar(select(FaqQuestion).where(FaqQuestion.tenant == self.tenant,
                                                             FaqQuestion.question_id == question_id))
            if entry is None:
                session.add(FaqQuestion(tenant=self.tenant, question_id=question_id, reference=reference))
            elif reference is not None:
                entry.reference = reference

    def reference(self, question_id: int) -> str | None:
        """The reference answer of a question in this tenant's FAQ, if it has one."""
        with self.sessions() as session:
            return session.scalar(select(FaqQuestion.reference).where(FaqQuestion.tenant == self.tenant,
                                                                      FaqQuestion.question_id == question_id))

    def save_answer(self, question_id: int, text: str, level: str = "quick", documents=(), **fields) -> dict:
        """Store an answer in SQL, then put the question's best servable answer in the hot cache; return its payload.

        `documents`: the ids of the documents it was written from (a change of one outdates it)."""
        curated = fields.pop("curated", False)
        expires = None if curated else utcnow() + timedelta(seconds=self.settings.answer_ttl_s)
        with session_scope(self.sessions) as session:
            question = session.get(Question, question_id)
            answer = Answer(question=question, namespace=self.namespace, tenant=self.tenant, level=level, text=text,
                            curated=curated, expires_at=expires, **fields)
            session.add(answer)
            session.flush()
            session.add_all(AnswerDocument(answer_id=answer.id, document_id=document) for document in documents)
            payload = answer_payload(answer, question)
            qhash = question.qhash
        self.recache(qhash)
        return payload

    def supersede(self, question_id: int, qhash: str, keep: int) -> None:
        """Make the question's other generated answers in this namespace due a refresh, so that `keep` (fresh)
        is served before them: an asker's Cache-Control: no-cache. Curated and pinned answers stay first."""
        with session_scope(self.sessions) as session:
            session.execute(update(Answer).where(
                Answer.question_id == question_id, Answer.namespace == self.namespace, Answer.id != keep,
                ~Answer.curated, ~Answer.pinned, Answer.expires_at > utcnow()).values(expires_at=utcnow()))
        self.recache(qhash)

    def recache(self, qhash: str) -> dict | None:
        """Put the question's best servable answer in the hot cache (or drop the entry when none is left).

        The paraphrases linked to the question (`canonical_id`, predicted or learned for this tenant) are
        served its answers under their own hashes: their entries are dropped, so the next asker reads the
        new best one, never a replaced or invalidated one.
        """
        best = self._best_answer(qhash)
        stale = [keys.answer(self.ns, h) for h in (qhash, *self._paraphrase_hashes(qhash))]
        if self._drop(stale, qhash) and best is not None:
            self._cache(qhash, best)
        return best

    def _drop(self, entries: list[str], qhash: str) -> bool:
        """Drop these hot-cache entries (of `qhash`'s answers); return whether Redis did.

        With Redis unreachable the entries are written to SQL, and the sweep drops them once it is back
        (precache.recovery.retry_drops): the old answer is not served from the hot cache until it expires.
        """
        try:
            self.redis.delete(*entries)
            return True
        except redis.RedisError as exc:
            log.warning("hot cache unavailable, the sweep will drop the entries of %s: %s", qhash, exc)
        with session_scope(self.sessions) as session:
            session.add_all(HotCacheDrop(key=key) for key in entries)
        return False

    def _paraphrase_hashes(self, qhash: str) -> list[str]:
        """The hashes of the questions answered by this one's answers (linked, predicted or learned for this tenant)."""
        question_id = select(Question.id).where(Question.qhash == qhash).scalar_subquery()
        linked = select(Question.qhash).where(Question.canonical_id == question_id)
        predicted = (select(Question.qhash).join(PredictedQuestion, PredictedQuestion.question_id == Question.id)
                     .where(PredictedQuestion.canonical_id == question_id, PredictedQuestion.tenant == self.tenant))
        learned = (select(Question.qhash).join(LearnedPhrasing, LearnedPhrasing.question_id == Question.id)
                   .where(LearnedPhrasing.target_id == question_id, LearnedPhrasing.tenant == self.tenant,
                          LearnedPhrasing.confirmed_at.is_not(None)))
        with self.sessions() as session:
            return list(session.scalars(linked.union(predicted, learned)))

    def servable_answer(self, answer_id: int) -> bool:
        """Tell whether a stored answer passes the gate in this namespace."""
        query = select(Answer.id).where(Answer.id == answer_id, self.servable())
        with self.sessions() as session:
            return session.scalar(query) is not None

    def gated_count(self, question_id: int) -> int:
        """Return how many generated answers of a question in this namespace failed the quality gate."""
        query = select(func.count(Answer.id)).where(
            Answer.question_id == question_id, Answer.namespace == self.namespace, ~Answer.curated,
            Answer.quality < self.settings.quality_threshold,
        )
        with self.sessions() as session:
            return int(session.scalar(query) or 0)

    def answer_by_id(self, answer_id: int) -> dict | None:
        """Return the payload of one stored answer."""
        with self.sessions() as session:
            answer = session.get(Answer, answer_id)
            return answer_payload(answer, answer.question) if answer else None

    def has_answer(self, question_id: int) -> bool:
        """Tell whether a question already has an answer servable in this namespace."""
        query = select(Answer.id).where(Answer.question_id == question_id, self.servable()).limit(1)
        with self.sessions() as session:
            return session.scalar(query) is not None

    def vouched(self, question_id: int) -> bool:
        """Tell whether a question has a curated or pinned answer of its own in this namespace (not rejected)."""
        query = select(Answer.id).where(Answer.question_id == question_id, Answer.curated | Answer.pinned,
                                        self.visible(), not_set_aside())
        with self.sessions() as session:
            return session.scalar(query.limit(1)) is not None

    def has_curated(self, question_id: int, text: str) -> bool:
        """Tell whether this exact curated answer is already stored."""
        query = select(Answer.id).where(Answer.question_id == question_id, Answer.curated, Answer.text == text,
                                        Answer.tenant == self.tenant)
        with self.sessions() as session:
            return session.scalar(query.limit(1)) is not None

    def has_level(self, question_id: int, level: str) -> bool:
        """Tell whether a fresh answer of this level exists for the question in this namespace."""
        query = select(Answer.id).where(Answer.question_id == question_id, Answer.level == level,
                                        Answer.expires_at > utcnow(), self.servable())
        with self.sessions() as session:
            return session.scalar(query.limit(1)) is not None


def _create_question(session, question: Question) -> int:
    """Store a new question; return its id, or that of the same question another process created first."""
    qhash = question.qhash
    session.add(question)
    try:
        session.commit()
    except IntegrityError:  # another process created it first
        session.rollback()
        return session.scalar(select(Question.id).where(Question.qhash == qhash))
    return question.id
