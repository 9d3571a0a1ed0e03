"""Settings of serving: where state lives, what a miss is answered with, limits, listeners, logging."""

from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode


class StorageSettings(BaseModel):
    """Where state lives: the folder, SQL, Redis and the broker."""

    var_dir: Path = Field(Path("var"), description="Folder for the SQLite file, beat schedule and logs.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means a SQLite file in VAR_DIR.")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis for the hot cache, locks and jobs.")
    broker_url: str = Field("", description="Celery broker URL; empty means REDIS_URL.")


class AnswerSettings(BaseModel):
    """What an asker gets when the cache has nothing better: the fallback and the intent templates."""

    fallback_answer: str = Field(
        "I don't have an answer to that yet. It is being prepared now; please ask again in a moment.",
        min_length=1,
        description="Answer given when nothing better is ready in time.",
    )
    templates_file: Path | None = Field(None, description="YAML intent file; empty means the built-in one.")
    korean_file: Path | None = Field(
        None, description="YAML file of what Korean askers get without the model (fallback, intent templates, the "
        "answer where the model cannot answer in Korean); empty means the built-in precache/data/korean.yaml.")


class LimitSettings(BaseModel):
    """Input limits, waits, lifetimes, and the web and Flower listeners."""

    max_question_chars: int = Field(2000, ge=1, description="Longest question accepted, in characters.")
    max_body_bytes: int = Field(65536, ge=1024, description="Largest request body accepted, in bytes.")
    max_wait_ms: int = Field(60000, ge=0, description="Largest wait_ms a client may ask for.")
    stream_max_s: int = Field(300, ge=1, description="Longest a /v1/ask/stream response waits for answers.")
    stream_heartbeat_s: int = Field(
        15, ge=1, description="A waiting stream sends an SSE comment this often: proxies keep it open, and an asker "
        "who went away is noticed (its stream ends and frees its place).")
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
    web_worker_class: Literal["gevent", "gthread"] = Field(
        "gevent", description="gunicorn worker class: gevent serves waiting asks and streams without a thread "
        "each; gthread gives each request a thread (WEB_THREADS per worker).")
    web_connections: int = Field(1000, ge=1, description="Most open connections per gevent worker.")
    web_threads: int = Field(8, ge=1, description="Threads per gthread worker (a waiting ask holds one).")
    flower_port: int = Field(5555, ge=1, le=65535, description="Port of Flower.")


class ProcessSettings(BaseModel):
    """Who a client is, rate limiting, and logging of every process."""

    # NoDecode: the variable is a comma-separated list, not the JSON that pydantic-settings would expect.
    trusted_proxies: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = Field(
        (), description="Addresses or CIDR networks of the reverse proxies in front of the web process, "
        "comma-separated: only a request from one of them has its X-Forwarded-For read for the client's "
        "address. Empty: the client is the connection's peer and X-Forwarded-For is ignored.")
    rate_limit: str = Field(
        "", description="Limits per client address, e.g. '20/second;600/minute' (Flask-Limiter syntax, counted in "
        "Redis); empty turns rate limiting off. /healthz, /readyz and /metrics are never limited.")
    streams_per_client: int = Field(
        50, ge=0, description="Most streams (/v1/ask/stream, streamed chat) one client may hold open at once; past "
        "it a new one gets 429. A client is its address, or the asker the calling app vouches for (X-Asker-Id "
        "with the feedback key). 0: no cap.")
    new_questions_per_minute: int = Field(
        120, ge=0, description="Most new questions (misses that start a generation) one client may ask per "
        "minute; past it a new question gets 429, while cached ones are still answered. 0: no cap.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level of every process.")
    log_json: bool = Field(False, description="Write logs as JSON lines (one object per record) instead of text.")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value) -> tuple[IPv4Network | IPv6Network, ...]:
        if isinstance(value, str):
            value = value.split(",")
        entries = value if isinstance(value, (list, tuple)) else [value]
        networks = []
        for entry in entries:
            text = str(entry).strip()
            if not text:
                continue
            try:
                networks.append(ip_network(text))  # strict: 10.0.0.1/8 is a typo, not 10.0.0.0/8
            except ValueError as exc:
                raise ValueError(f"{text!r} is not an address or a CIDR network ({exc})") from None
        return tuple(networks)
