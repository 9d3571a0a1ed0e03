"""Database models: questions (FAQ and asked), their answers, the ask log, question embeddings, and the
team's documents with their passages."""

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Question(Base):
    """A distinct normalised question: an FAQ entry or one that somebody asked."""

    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    qhash: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    normalized: Mapped[str] = mapped_column(Text)
    # Read no more (FaqQuestion holds them per tenant since migration 0011); kept for a downgrade.
    is_faq: Mapped[bool] = mapped_column(Boolean, default=False)
    reference: Mapped[str | None] = mapped_column(Text)
    # A paraphrase linked to the question that answers it for every tenant (duplicates merged by migration 0007,
    # and predictive precompute's links made before 0009; its links are per tenant now: PredictedQuestion).
    canonical_id: Mapped[int | None] = mapped_column(ForeignKey("questions.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    answers: Mapped[list["Answer"]] = relationship(back_populates="question")


class Answer(Base):
    """An answer to a question: curated (given by a person) or generated in a namespace."""

    __tablename__ = "answers"
    __table_args__ = (Index("ix_answers_question_namespace", "question_id", "namespace"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(String(255))
    level: Mapped[str] = mapped_column(String(16))  # quick | detailed
    text: Mapped[str] = mapped_column(Text)
    curated: Mapped[bool] = mapped_column(Boolean, default=False)
    # The tenant a curated answer belongs to ("" = no tenant); generated answers carry it in `namespace`.
    tenant: Mapped[str] = mapped_column(String(64), default="", server_default="")
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    # None: served when its quality clears the threshold; "approved": served anyway; "rejected": never served;
    # "outdated": never served, its documents changed (precache.documents.changes); "unsupported": never served,
    # it says what its passages do not (worker/settle.py).
    review: Mapped[str | None] = mapped_column(String(16))
    model: Mapped[str | None] = mapped_column(String(255))
    quality: Mapped[float | None] = mapped_column(Float)
    quality_components: Mapped[dict] = mapped_column(JSON, default=dict)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    mean_logprob: Mapped[float | None] = mapped_column(Float)
    job_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # None: no documents took part; "grounded": written from `sources`; "not_in_documents": no passage was
    # relevant (the configured answer); "ungrounded": the model alone (PRECACHE_GROUNDING=preferred).
    grounding: Mapped[str | None] = mapped_column(String(20))
    # The passages the answer used, best first: [{"document", "excerpt", "score"}] (the asker's view).
    sources: Mapped[list | None] = mapped_column(JSON, default=list)

    question: Mapped[Question] = relationship(back_populates="answers")


class AskLog(Base):
    """One request to the ask endpoint: what was asked, which tier answered, how fast."""

    __tablename__ = "ask_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    question: Mapped[str] = mapped_column(Text)
    qhash: Mapped[str] = mapped_column(String(64), index=True)
    namespace: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))  # exact | semantic | template | generated | fallback | renew
    latency_ms: Mapped[float] = mapped_column(Float)
    answer_id: Mapped[int | None] = mapped_column(ForeignKey("answers.id", ondelete="SET NULL"))
    job_id: Mapped[str | None] = mapped_column(String(64))  # the Celery task id of the miss
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Who asked ("address:<client>" or "asker:<id>" the calling app vouched for); None from the command line.
    asker: Mapped[str | None] = mapped_column(String(128))


class PredictedQuestion(Base):
    """What predictive precompute made of one tenant's misses: an FAQ entry of the tenant (`canonical_id` None),
    or a paraphrase linked to one, answered by its answers for this tenant's askers only."""

    __tablename__ = "predicted_questions"
    __table_args__ = (UniqueConstraint("tenant", "question_id", name="uq_predicted_questions_tenant_question"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), default="", server_default="")
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"))
    canonical_id: Mapped[int | None] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FaqQuestion(Base):
    """A question of one tenant's FAQ, with the reference answer (never served) its generated answers are scored
    against: FAQ precompute generates it in that tenant's namespace only."""

    __tablename__ = "faq_questions"
    __table_args__ = (UniqueConstraint("tenant", "question_id", name="uq_faq_questions_tenant_question"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), default="", server_default="")
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"))
    reference: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HotCacheDrop(Base):
    """A hot-cache entry that must be dropped and could not be (Redis unreachable): the sweep drops it."""

    __tablename__ = "hot_cache_drops"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QuestionEmbedding(Base):
    """The vector of a question under one embedding model, for the semantic tier.

    `id` only grows (AUTOINCREMENT on SQLite), so a web process loads new rows with `id > last seen`.
    """

    __tablename__ = "question_embeddings"
    __table_args__ = (
        UniqueConstraint("question_id", "model", name="uq_question_embeddings_question_model"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(255))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian, L2-normalised
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Feedback(Base):
    """What an asker said of an answer for their question: it fits, it does not, or none of the offered ones does.

    `offered` holds the answers shown (the instant answer or the suggestions) with the confidence each
    had for this question at the time: the per-answer decisions learn from those.
    """

    __tablename__ = "feedback"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    tenant: Mapped[str] = mapped_column(String(64), default="", server_default="")
    question: Mapped[str] = mapped_column(Text)
    qhash: Mapped[str] = mapped_column(String(64), index=True)
    answer_id: Mapped[int | None] = mapped_column(ForeignKey("answers.id", ondelete="SET NULL"))
    helpful: Mapped[bool] = mapped_column(Boolean)
    offered: Mapped[dict] = mapped_column(JSON, default=dict)  # answer id -> confidence, as shown
    asker: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(255))
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # the question's embedding, float32 little-endian


class LearnedPhrasing(Base):
    """An asked phrasing linked by an asker to the answer that fits it, in one tenant's namespace.

    One row per asker who taught it. The link serves others once `confirmed_at` is set: when enough
    distinct askers taught the same link (PRECACHE_LEARN_CONFIRMATIONS), or an admin confirmed it.
    """

    __tablename__ = "learned_phrasings"
    __table_args__ = (Index("ix_learned_phrasings_question_tenant", "question_id", "tenant"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), default="", server_default="")
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"))
    answer_id: Mapped[int] = mapped_column(ForeignKey("answers.id", ondelete="CASCADE"))
    # The question whose answers are served for the phrasing (the answer's question).
    target_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"), index=True)
    taught_by: Mapped[str] = mapped_column(String(128))
    taught_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retracted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retracted_by: Mapped[str | None] = mapped_column(String(128))


class Document(Base):
    """A document of one tenant, as imported (`precache docs import`): its name, and the hash of its text."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("tenant", "name", name="uq_documents_tenant_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), default="", server_default="")
    name: Mapped[str] = mapped_column(String(1000))
    content_hash: Mapped[str] = mapped_column(String(64))
    chars: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    passages: Mapped[list["Passage"]] = relationship(back_populates="document", cascade="all, delete-orphan",
                                                     passive_deletes=True)


class Passage(Base):
    """A passage of a document (at most ~1,000 characters, cut along headings and paragraphs), with its vector."""

    __tablename__ = "passages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    heading: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(255))  # the embedder the vector is of (embedding_key)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian, L2-normalised

    document: Mapped[Document] = relationship(back_populates="passages")


class AnswerDocument(Base):
    """A document an answer used: when the document changes or goes, the answer stops being served."""

    __tablename__ = "answer_documents"

    answer_id: Mapped[int] = mapped_column(ForeignKey("answers.id", ondelete="CASCADE"), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True,
                                             index=True)
