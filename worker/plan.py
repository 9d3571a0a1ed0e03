"""How a batch of generation jobs is planned: which jobs need the model, and which backend call each goes in.

A job that needs no model gets the outcome it is to be settled with (worker/work.py): its work is done
(a redelivery, a duplicate), its question is in a language the model does not answer in, failed the quality
gate too often or crashed the worker too often, or does not exist; or the tenant's documents answer it
without the model: no passage passes the relevance check (precache.documents.retrieval: the
not-in-documents answer), or its passages are answered with their own sentences (GROUNDED_ANSWERS
extractive, or a language the model does not write). The others carry the passages they are written from. The rest are grouped by answer level and
sampling, quick first (its askers are waiting); a question the worker died while generating is generated
alone, so that a model crashing on it takes no other job down with it.
"""

import logging
from dataclasses import dataclass, field, replace

import redis
from sqlalchemy import select

from precache import keys
from precache.context import AppContext
from precache.documents.retrieval import ground
from precache.jobs import PENDING
from precache.language import language_of
from precache.localized import generates
from precache.models import PredictedQuestion, Question
from precache.semantic.embedders import embedder_for
from worker.work import (AlreadyDone, Extracted, Failed, Group, Item, JobRequest, LeftForReview, NoQuestion,
                         NotInDocuments, Outcome)

log = logging.getLogger(__name__)

# Quick first: its askers are waiting.
ORDER = [Group(level, sampled, alone) for level, sampled in (("quick", False), ("detailed", False), ("detailed", True))
         for alone in (False, True)]
JOINABLE = ORDER[0]  # the group a quick job that arrives while it is generated joins (worker/joining.py)


@dataclass
class Plan:
    """A planned batch: the groups to generate, and the later copies of a question in them (generated once)."""

    groups: dict[Group, list[Item]] = field(default_factory=lambda: {group: [] for group in ORDER})
    duplicates: list[Item] = field(default_factory=list)
    grouped: set[tuple] = field(default_factory=set)  # (namespace, question, level) of each item in a group

    def add(self, ctx: AppContext, index: int, request: JobRequest) -> Outcome | NoQuestion | None:
        """Group one job for the model, or return the outcome it is settled with when it needs none.

        Jobs are added in their batch's order, each settled before the next is added: a later copy of a job
        finds it finished.
        """
        rctx = ctx.for_tenant(request.tenant)
        question = _load_question(rctx, request.question_id)
        if question is None:
            return NoQuestion(index, request.question_id)
        item = Item(index, request, question, rctx)
        if (done := already_done(item)) is not None:
            return done
        try:
            grounding, passages = ground(rctx, embedder_for(rctx.settings, threads=None), question.text)
        except Exception as exc:  # never the model's memory instead: sent again (the database away) or failed
            log.error("cannot retrieve the passages of question %s: %s", question.id, exc)
            return Failed(item, exc)
        item = replace(item, grounding=grounding, passages=tuple(passages))
        if grounding == "not_in_documents":
            return NotInDocuments(item)
        language = language_of(question.text)
        if grounding == "grounded" and (rctx.settings.grounded_answers == "extractive"
                                        or not generates(rctx.settings, language)):
            return Extracted(item)  # the passages' own sentences, in their language, without the model
        if not generates(rctx.settings, language):  # FAQ and predictive precompute queue any question
            return LeftForReview(item, f"the model does not answer in {language!r} "
                                 "(PRECACHE_LLM_LANGUAGES); the question is left for an admin to answer")
        gated = rctx.store.gated_count(question.id) if request.kind != "detailed" else 0
        if gated >= rctx.settings.quality_max_tries:
            return LeftForReview(item, f"{gated} answers failed the quality gate; the question is left for review")
        died = _crashes(rctx, question)
        if died >= rctx.settings.generation_max_crashes:
            log.error("question %s: the worker died during %d generations of it; not running the model on it "
                      "again (PRECACHE_GENERATION_MAX_CRASHES)", question.id, died)
            return Failed(item, RuntimeError(
                f"the worker died during {died} generations of this question (the model crashes on it?); "
                "given up, see PRECACHE_GENERATION_MAX_CRASHES"))
        item = replace(item, gated=gated, alone=died > 0)
        group = _group(item)
        key = (rctx.ns, question.id, group.level)
        (self.duplicates if key in self.grouped else self.groups[group]).append(item)
        self.grouped.add(key)
        return None


    def take(self, index: int, group: Group) -> Item | None:
        """Take the job at `index` of its batch out of `group`, if it was just put there (to generate it now)."""
        items = self.groups[group]
        return items.pop() if items and items[-1].index == index else None


def already_done(item: Item) -> AlreadyDone | None:
    """Return how a job whose work is done (a redelivery, a duplicate) is settled; None while it has work to do."""
    ctx, request = item.ctx, item.request
    record = ctx.jobs.get(request.job_id)
    finished = bool(record and record["status"] != PENDING)
    if finished or _in_store(ctx, item.question, request.kind):
        return AlreadyDone(item, job_finished=finished)
    return None


def _in_store(ctx: AppContext, question: Question, kind: str) -> bool:
    """Tell whether the work of this job kind is already in the store."""
    if kind == "renew":
        return False  # an asker's no-cache: a new answer, whatever is stored
    if kind == "quick":
        return ctx.store.lookup(question.qhash) is not None
    return ctx.store.has_level(question.id, "detailed" if kind == "detailed" else "quick")


def _crashes(ctx: AppContext, question: Question) -> int:
    """Return how many generations of this question began and never returned: the worker died during them."""
    try:  # worker/batch.py counts each generation as started, and as ended when it returns or raises
        started, ended = ctx.redis.hmget(keys.generating(ctx.ns, question.qhash), "started", "ended")
    except redis.RedisError:
        return 0  # not knowing is no reason to refuse a question
    return max(0, int(started or 0) - int(ended or 0))


def _group(item: Item) -> Group:
    """A regeneration (an earlier answer failed the gate) uses the detailed settings; the third try samples."""
    level = "detailed" if item.request.kind == "detailed" or item.gated else "quick"
    sampled = item.gated >= 2 and item.ctx.settings.regenerate_temperature > 0
    return Group(level, sampled, item.alone)


def _load_question(ctx: AppContext, question_id: int) -> Question | None:
    """Return the question to answer: a paraphrase linked to a canonical question (for this tenant, else for
    every tenant) is answered through it."""
    with ctx.sessions() as session:
        question = session.get(Question, question_id)
        if question is None:
            return None
        predicted = session.scalar(select(PredictedQuestion.canonical_id).where(
            PredictedQuestion.question_id == question.id, PredictedQuestion.tenant == ctx.store.tenant))
        canonical = predicted or question.canonical_id
        return (session.get(Question, canonical) or question) if canonical else question
