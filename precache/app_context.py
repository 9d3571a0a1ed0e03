"""What `ctx` is: the protocol a Context and a TenantContext (precache/context.py) both satisfy.

A module of its own because precache.context builds the ask-log writer (precache.ask_writer, then
precache.asklog), and those modules name the protocol too: defined in context.py, it would be an
import cycle.
"""

from typing import Protocol, runtime_checkable

import redis as redis_lib

from precache.config import Settings
from precache.jobs import Jobs
from precache.store import AnswerStore


@runtime_checkable
class AppContext(Protocol):
    """What the web, the worker and the commands are handed as `ctx`: a Context, or a TenantContext of it."""

    settings: Settings
    tenant: str
    ns: str  # the namespace id of the answers it reads and writes
    redis: redis_lib.Redis
    store: AnswerStore
    jobs: Jobs

    def sessions(self): ...  # a new SQLAlchemy session (a sessionmaker)

    def for_tenant(self, tenant: str | None) -> "AppContext": ...
