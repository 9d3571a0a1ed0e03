"""The answer ladder: one object answers every ask — exact, semantic, template, generated within the
deadline, fallback — and logs it.

`Ladder` is built once per process (by `create_app`, or by `precache ask`) from the connections, the
semantic tier and the template intents; the fast path (web/fast.py), the views (ask, stream, chat,
feedback) and the `precache ask` command all answer through it.
"""

import logging
import time
from dataclasses import dataclass, field
from functools import cached_property

import redis
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import SQLAlchemyError

from precache import asklog, keys, recovery
from precache.config import Settings
from precache.context import AppContext, Context
from precache.documents.retrieval import has_documents
from precache.jobs import PENDING, READY
from precache.language import KOREAN, language_of
from precache.localized import fallback_in, generates, no_model_answer
from precache.logs import request_id
from precache.normalize import normalize, question_hash
from precache.semantic import calibration
from precache.semantic.tier import SemanticTier
from web import caps, inflight, metrics
from web.errors import ApiError, error_body
from web.intents import Intent, korean_file_intents, load_intents, match_intent
from web.schemas import check_window

log = logging.getLogger(__name__)
# Redis (locks, job records) or the broker unreachable: the question cannot be queued now.
QUEUE_ERRORS = (redis.RedisError, BrokerError, OSError)


@dataclass
class Ask:
    """One question on its way down the ladder."""

    question: str
    normalized: str
    qhash: str
    detail: str = "quick"
    deadline: float = field(default_factory=time.monotonic)  # monotonic time the asker stops waiting
    tenant: str = ""  # whose answers: tenants never share answers
    started: float = field(default_factory=time.perf_counter)  # when the request came in (its logged latency)
    vector: object = None  # the question's embedding, once the semantic tier computed it
    hot_missed: bool = False  # the hot cache was read for this question and had no answer
    asker: str = ""  # who asks (web.identity.asker), logged with the ask; "" from the command line

    @classmethod
    def of(cls, question: str, wait_ms: int = 0, detail: str = "quick", tenant: str = "",
           started: float | None = None, asker: str = "") -> "Ask":
        """Normalise a validated question into an Ask with its deadline."""
        normalized = normalize(question)
        if not normalized:
            raise ApiError(400, "invalid_field", "question: must contain at least one letter or digit")
        return cls(question, normalized, question_hash(normalized), detail, time.monotonic() + wait_ms / 1000,
                   tenant, started if started is not None else time.perf_counter(), asker=asker)

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    @cached_property
    def language(self) -> str:
        """The question's language, read once (an exact hit never needs it)."""
        return language_of(self.question)


@dataclass
class Outcome:
    status: int
    body: dict
    stale: bool = False


def ready_body(payload: dict, source: str, **extra) -> dict:
    """Return the 200 body for a stored answer."""
    body = {"status": "ready", "answer": payload["answer"], "source": source, "quality": payload["quality"],
            "answer_id": payload["answer_id"], "matched_question": payload["matched_question"],
            "grounded": payload.get("grounding") == "grounded", "sources": payload.get("sources") or []}
    if payload.get("level"):
        body["level"] = payload["level"]
    return body | extra


def pending_body(job_id: str, fallback: str, tenant: str = "") -> dict:
    """Return the 202 body for a question being generated; its poll link names the tenant the job is in."""
    poll = f"/v1/jobs/{job_id}" + (f"?tenant={tenant}" if tenant else "")  # tenant names are URL-safe
    return {"status": "pending", "job_id": job_id, "answer": fallback, "source": "fallback", "poll": poll}


class Ladder:
    """Answer asks from the first tier that can, within each asker's deadline; log every ask."""

    def __init__(self, context: Context, tier: SemanticTier, intents: list[Intent],
                 korean_intents: list[Intent] | None = None):
        self.context, self.tier, self.intents = context, tier, intents
        self.korean_intents = korean_intents or []
        self.settings: Settings = context.settings

    @classmethod
    def from_settings(cls, settings: Settings) -> "Ladder":
        """Build the ladder of one process: its connections (opened on first use), the intents, the warmed tier."""
        intents = load_intents(settings.templates_file)
        korean_intents = korean_file_intents(settings.korean_file)
        tier = SemanticTier(settings)
        tier.warm()  # the first ask of this process is not the one that waits for the embedder
        return cls(Context(settings), tier, intents, korean_intents)

    def for_tenant(self, tenant: str) -> AppContext:
        """Return the connections seen from one tenant's namespace."""
        return self.context.for_tenant(tenant)

    def close(self) -> None:
        self.context.close()

    def ask(self, question: str, wait_ms: int = 0, detail: str = "quick", tenant: str = "",
            started: float | None = None, asker: str = "") -> Ask:
        """Return the Ask of a validated question; refuse one longer than the semantic tier reads whole."""
        check_window(question, self.tier)
        return Ask.of(question, wait_ms, detail, tenant, started, asker)

    def answer(self, ask: Ask) -> Outcome:
        """Answer one ask and log it: the hot cache, else the ladder; 503 when a miss can be kept nowhere."""
        hit = self.hot(ask)
        if hit is not None:
            return hit
        ctx = self.for_tenant(ask.tenant)
        try:
            outcome = self._instant(ctx, ask) or self._miss(ctx, ask)
        except (redis.RedisError, OSError) as exc:  # neither SQL nor Redis can keep the question
            log.warning("cannot record a miss anywhere: %s", exc)
            fallback = fallback_in(self.settings, ask.language)
            self._record(ctx, ask, {"answer": fallback, "source": "fallback"})
            return Outcome(503, error_body(503, "queue_unavailable", "the generation queue is unavailable; the "
                                           "fallback answer is given", answer=fallback, source="fallback"))
        self._record(ctx, ask, outcome.body, outcome.stale)
        return outcome

    def hot(self, ask: Ask) -> Outcome | None:
        """The exact hit from the hot cache, its ask logged in the same Redis round trip; None otherwise.

        Its logged latency is counted up to that round trip (what follows is building the response).
        """
        if ask.detail != "quick" or self.settings.ask_log_flush_ms <= 0 or ask.hot_missed:
            return None  # a detailed ask may be answered by another answer; unbatched, the log goes to SQL
        ctx = self.for_tenant(ask.tenant)
        entry = {"at": time.time(), "question": ask.question, "qhash": ask.qhash, "namespace": ctx.store.namespace,
                 "source": "exact", "latency_ms": round((time.perf_counter() - ask.started) * 1000, 3),
                 "job_id": None, "request_id": request_id.get(), "asker": ask.asker or None}
        try:
            payload = ctx.ask_log.hit_and_push(keys.answer(ctx.ns, ask.qhash), entry)
        except redis.RedisError as exc:  # the ladder reads SQL, and the ask goes to SQL
            log.warning("hot cache unavailable: %s", exc)
            return None
        if payload is None:
            ask.hot_missed = True
            return None
        outcome = self._cached(ctx, ask, payload, "exact")
        metrics.observe_ask("exact", time.perf_counter() - ask.started, payload.get("quality"), outcome.stale)
        return outcome

    def instant(self, ask: Ask) -> Outcome | None:
        """Answer from the cache (exact, then semantic) or a template, neither queueing nor logging; None on a miss."""
        return self._instant(self.for_tenant(ask.tenant), ask)

    def renew(self, ask: Ask) -> str:
        """Queue a new answer for the question whatever is cached (an asker's no-cache); log it as a renewal.

        Returns the job id."""
        ctx = self.for_tenant(ask.tenant)
        self.take_new_question(ctx, ask)
        job_id, joined = ctx.jobs.enqueue(ctx.ns, ask.qhash, lambda: self._store_question(ctx, ask),
                                          request_id.get(), "renew", language=ask.language)
        (metrics.JOINS if joined else metrics.MISSES).inc()
        # Not instant, and not a miss either: anyone can send no-cache at will, so predictive precompute
        # must not count it (worker/scheduled.py), and the sweep need not queue it (it is queued).
        self._record(ctx, ask, {"source": "renew", "job_id": job_id})
        return job_id

    def take_new_question(self, ctx: AppContext, ask: Ask, joining=lambda: False) -> None:
        """Count generation work the asker starts; past PRECACHE_NEW_QUESTIONS_PER_MINUTE, a 429 (web/caps.py)."""
        caps.take_new_question(ctx.redis, ask.asker, self.settings.new_questions_per_minute, joining)

    def count(self, ask: Ask, outcome: Outcome) -> None:
        """Count an answer in the metrics without logging its question (an asker's no-store)."""
        metrics.observe_ask(outcome.body["source"], time.perf_counter() - ask.started, outcome.body.get("quality"),
                            outcome.stale)

    def offered(self, ask: Ask) -> dict[int, float]:
        """Return the answers the ladder offers for a question now (instant answer and suggestions) with their
        confidence: the only answers an asker's feedback may link to it."""
        ctx = self.for_tenant(ask.tenant)
        ask.vector = self.tier.vector(ask.question)
        self.tier.refreshed(ctx)
        offered = {payload["answer_id"]: near.confidence for payload, near in self.tier.offers(ctx, ask.vector)}
        hit = ctx.store.lookup(ask.qhash)
        if hit is not None:  # an exact hit (a cached question, or a phrasing learned before)
            offered.setdefault(hit[0]["answer_id"], 1.0)
        return offered

    def _instant(self, ctx: AppContext, ask: Ask) -> Outcome | None:
        hit = ctx.store.lookup(ask.qhash, hot=not ask.hot_missed)
        if hit is not None:
            return self._cached(ctx, ask, hit[0], "exact")
        ask.vector = self.tier.vector(ask.question)
        match = self.tier.match(ctx, ask.question, ask.vector, ask.qhash)
        hit = ctx.store.lookup(match.qhash) if match else None
        if hit is not None:
            return self._cached(ctx, ask, hit[0], "semantic", similarity=round(match.similarity, 4))
        intent = match_intent(self.korean_intents if ask.language == KOREAN else self.intents, ask.normalized)
        if intent is not None:
            return Outcome(200, {"status": "ready", "answer": intent.answer, "source": "template", "quality": None,
                                 "answer_id": None, "matched_question": None, "grounded": False, "sources": [],
                                 "intent": intent.name})
        taught = ctx.store.taught_answer(ask.qhash, ask.asker) if ask.asker else None
        if taught is not None:  # what this asker picked for these words: theirs at once, others' once confirmed
            return self._cached(ctx, ask, taught, "exact")
        return None

    def _cached(self, ctx: AppContext, ask: Ask, payload: dict, source: str, **extra) -> Outcome:
        """Serve a stored answer; queue a refresh when stale, and a detailed answer when asked for."""
        stale = bool(payload.get("expires_at") and payload["expires_at"] < time.time())
        if stale:
            extra["stale"] = True
            try:
                ctx.jobs.enqueue(ctx.ns, payload["qhash"], lambda: payload["question_id"], request_id.get(), "refresh")
            except QUEUE_ERRORS as exc:  # the stale answer is still served; the next hit queues the refresh
                log.warning("cannot queue a refresh: %s", exc)
        if ask.detail == "detailed" and payload.get("level") == "quick" and not payload.get("curated"):
            try:
                detailed = self._wait_detailed(ctx, ask, payload)
                if detailed is None:
                    extra["job_id"] = ctx.jobs.pending_job(ctx.ns, payload["qhash"], "detailed")
            except (*QUEUE_ERRORS, SQLAlchemyError) as exc:  # the quick answer is still an answer
                log.warning("cannot queue or read a detailed answer: %s", exc)
                return Outcome(200, ready_body(payload, source, **extra), stale)
            if detailed is not None:
                return Outcome(200, ready_body(detailed, "generated"), stale)
        return Outcome(200, ready_body(payload, source, **{k: v for k, v in extra.items() if v is not None}), stale)

    def _wait_detailed(self, ctx: AppContext, ask: Ask, payload: dict) -> dict | None:
        job_id, _ = ctx.jobs.enqueue(ctx.ns, payload["qhash"], lambda: payload["question_id"], request_id.get(),
                                     "detailed")
        record = ctx.jobs.wait(job_id, ask.remaining())
        if record and record["status"] == READY and record.get("answer_id"):
            answer = ctx.store.answer_by_id(int(record["answer_id"]))
            return answer if answer and answer["level"] == "detailed" else None
        return None

    def _miss(self, ctx: AppContext, ask: Ask) -> Outcome:
        """Queue the question once (a paraphrase being generated is joined), wait for it within the deadline;
        else the fallback with the job to poll and suggestions."""
        if not generates(self.settings, ask.language) and not self._documents_answer(ctx):
            return self._not_generated(ctx, ask)
        try:
            job_id, joined = self._join_paraphrase(ctx, ask), True
            if job_id is None:
                # Joining a question already pending is free.
                self.take_new_question(ctx, ask, joining=lambda: ctx.jobs.pending_job(ctx.ns, ask.qhash, "quick"))
                job_id, joined = ctx.jobs.enqueue(ctx.ns, ask.qhash, lambda: self._store_question(ctx, ask),
                                                  request_id=request_id.get(), language=ask.language)
        except (*QUEUE_ERRORS, SQLAlchemyError) as exc:
            return self._deferred(ctx, ask, exc)
        (metrics.JOINS if joined else metrics.MISSES).inc()
        payload = None
        try:
            record = ctx.jobs.wait(job_id, ask.remaining()) if ask.remaining() > 0 else None
            if record and record["status"] == READY:
                payload = ctx.store.answer_by_id(int(record["answer_id"]))
        except (*QUEUE_ERRORS, SQLAlchemyError) as exc:  # the job is queued: the asker gets the fallback and polls
            log.warning("cannot wait for job %s: %s", job_id, exc)
        if payload is not None:  # as a cached answer: one asked for in detail waits for the detailed one too
            return self._cached(ctx, ask, payload, "generated", job_id=job_id)
        body = pending_body(job_id, fallback_in(self.settings, ask.language), ask.tenant)
        suggestions = self.tier.suggestions(ctx, ask.vector)
        if suggestions:
            body["suggestions"] = suggestions
        return Outcome(202, body)

    def _documents_answer(self, ctx: AppContext) -> bool:
        """Tell whether the tenant's documents answer misses (in any language: the passages' own sentences where
        the model does not write it)."""
        if self.settings.grounding == "off":
            return False
        try:
            return has_documents(ctx.sessions, ctx.tenant)
        except SQLAlchemyError:  # not knowing: said at once as before
            return False

    def _join_paraphrase(self, ctx: AppContext, ask: Ask) -> str | None:
        """Return the pending job of a question that means the same, if any (one generation for both)."""
        if ask.vector is None:
            return None
        join = calibration.for_language(self.settings, ask.language).join_similarity
        job_id = inflight.find(ctx.redis, ctx.ns, ask.question, ask.vector, join)
        record = ctx.jobs.get(job_id) if job_id else None
        return job_id if record and record["status"] == PENDING else None

    def _store_question(self, ctx: AppContext, ask: Ask) -> int:
        """Store a new question (first asker only, before its task is sent) and announce it as in flight."""
        question_id = ctx.store.ensure_question(ask.question.strip(), ask.normalized, ask.qhash)
        if ask.vector is not None:
            job_id = ctx.jobs.pending_job(ctx.ns, ask.qhash, "quick")
            if job_id:
                inflight.register(ctx.redis, ctx.ns, job_id, ask.question, ask.vector)
        return question_id

    def _not_generated(self, ctx: AppContext, ask: Ask) -> Outcome:
        """A miss in a language the model does not answer in: said so at once, in that language; the question is
        kept for an admin to answer (it is never generated: the model would write gibberish, served to all)."""
        try:
            ctx.store.ensure_question(ask.question.strip(), ask.normalized, ask.qhash)
        except SQLAlchemyError as exc:  # the ask log still has it
            log.warning("cannot keep a question the model does not answer: %s", exc)
        body = {"status": "pending", "answer": no_model_answer(self.settings), "source": "fallback", "queued": False,
                "reason": "language"}
        if suggestions := self.tier.suggestions(ctx, ask.vector):
            body["suggestions"] = suggestions
        return Outcome(202, body)

    def _deferred(self, ctx: AppContext, ask: Ask, reason: Exception) -> Outcome:
        """Record a question that cannot be queued now (SQL, else Redis); the sweep queues it later."""
        log.warning("cannot queue a miss now, the question is kept for the sweep: %s", reason)
        try:
            ctx.store.ensure_question(ask.question.strip(), ask.normalized, ask.qhash)
        except SQLAlchemyError:
            recovery.defer(ctx.redis, recovery.QUESTION, text=ask.question.strip(), normalized=ask.normalized,
                           qhash=ask.qhash)  # a RedisError here leaves nowhere to keep it: answer() gives a 503
        return Outcome(202, {"status": "pending", "answer": fallback_in(self.settings, ask.language),
                             "source": "fallback",
                             "queued": False})

    def _record(self, ctx: AppContext, ask: Ask, body: dict, stale: bool = False) -> None:
        """Count the ask in the metrics and log it (precache.asklog writes the log to SQL in batches)."""
        seconds = time.perf_counter() - ask.started
        metrics.observe_ask(body["source"], seconds, body.get("quality"), stale)
        asklog.push(ctx, question=ask.question, qhash=ask.qhash, namespace=ctx.store.namespace,
                    source=body["source"], latency_ms=round(seconds * 1000, 3), answer_id=body.get("answer_id"),
                    job_id=body.get("job_id"), request_id=request_id.get(), asker=ask.asker or None)
