"""The connections one process needs, built once from settings: SQL, Redis, store, jobs."""

from dataclasses import dataclass, field
from functools import cached_property

import redis as redis_lib

from precache.app_context import AppContext  # noqa: F401 - what `ctx` is, named here by its users
from precache.config import Settings
from precache.db import make_engine, make_sessionmaker
from precache.jobs import Jobs
from precache.normalize import namespace_id
from precache.queueing import make_celery
from precache.store import AnswerStore


@dataclass
class Context:
    """Lazily built clients for one process; nothing connects until first use."""

    settings: Settings
    celery: object = field(default=None)

    @cached_property
    def engine(self):
        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self):
        return make_sessionmaker(self.engine)

    @cached_property
    def redis(self) -> redis_lib.Redis:
        return redis_lib.Redis.from_url(self.settings.redis_url, socket_timeout=5, socket_connect_timeout=2)

    @cached_property
    def store(self) -> AnswerStore:
        return AnswerStore(self.sessions, self.redis, self.settings)

    @cached_property
    def jobs(self) -> Jobs:
        if self.celery is None:
            self.celery = make_celery(lambda: self.settings)
        return Jobs(self.redis, self.settings, self.celery)

    @cached_property
    def ask_log(self):
        """The thread writing this process's asks to SQL in batches (started by the first ask)."""
        from precache.ask_writer import Writer

        return Writer(self, self.settings.ask_log_flush_ms / 1000)

    @property
    def ns(self) -> str:
        return namespace_id(self.settings.namespace)

    tenant = ""

    def for_tenant(self, tenant: str | None) -> "Context | TenantContext":
        """Return this context seen from one tenant's namespace (the same connections)."""
        return TenantContext(self, tenant) if tenant else self

    def close(self) -> None:
        """Write the asks still waiting, then release pooled connections (tests and short-lived commands)."""
        if "ask_log" in self.__dict__:
            self.ask_log.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()


def _shared(name: str) -> property:
    """A TenantContext attribute that is its shared context's: the same connections for every tenant."""
    return property(lambda self: getattr(self.base, name), doc=f"The shared context's {name}.")


class TenantContext:
    """A context whose store, namespace id and jobs belong to one tenant; the rest is the shared context's."""

    def __init__(self, base: Context, tenant: str):
        self.base = base
        self.tenant = tenant
        self.store = base.store.for_tenant(tenant)
        self.ns = self.store.ns
        self.jobs = base.jobs.for_tenant(tenant)

    settings = _shared("settings")
    redis = _shared("redis")
    sessions = _shared("sessions")
    engine = _shared("engine")
    celery = _shared("celery")
    ask_log = _shared("ask_log")

    def for_tenant(self, tenant: str | None) -> "Context | TenantContext":
        return self.base.for_tenant(tenant)
