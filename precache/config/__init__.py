"""Typed settings: environment variables with the prefix PRECACHE_, a .env file, defaults for one machine.

One flat `Settings` (every setting is `settings.<name>`, every variable `PRECACHE_<NAME>`), its fields
grouped by what they configure: serving.py (storage, fallback, limits, listeners, logs), generation.py
(the model and prompts, the scheduled jobs, time limits and retries), matching.py (the semantic tier,
the quality gate, learning from feedback).
"""

from pydantic import ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from precache.config.generation import DEFAULT_MODEL, ModelSettings, ReliabilitySettings, ScheduleSettings
from precache.config.matching import FeedbackSettings, GroundingSettings, QualitySettings, SemanticSettings
from precache.config.serving import AnswerSettings, LimitSettings, ProcessSettings, StorageSettings
from precache.logs import redact

__all__ = ["DEFAULT_MODEL", "ENV_PREFIX", "ConfigError", "Settings", "load_settings"]
ENV_PREFIX = "PRECACHE_"


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the environment variable."""


# The groups are listed last first: pydantic orders the fields from the last base to the first, and that
# order (storage, model, answers, semantic, quality, grounding, feedback, limits, schedule, reliability,
# processes) is the one a configuration with several wrong values reports them in.
class Settings(ProcessSettings, ReliabilitySettings, ScheduleSettings, LimitSettings, FeedbackSettings,
               GroundingSettings, QualitySettings, SemanticSettings, AnswerSettings, ModelSettings, StorageSettings,
               BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

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
