"""Rate limiting per client address (Flask-Limiter, counted in Redis): 429 with Retry-After.

The client is the one web/identity.py names: behind a trusted proxy, the address it forwarded for.
"""

from flask import request
from flask_limiter import Limiter, RateLimitExceeded

from precache import keys
from web.errors import error_response
from web.identity import client_address

# Probes and scrapes are never limited: a load balancer or Prometheus must always get through.
EXEMPT = {"health.healthz", "health.readyz", "metrics.metrics"}


def install(app, settings) -> Limiter | None:
    """Limit every route but the exempt ones to PRECACHE_RATE_LIMIT per client; nothing when it is empty."""
    if not settings.rate_limit.strip():
        return None
    limiter = _limiter(app, settings)
    limiter.request_filter(lambda: request.endpoint in EXEMPT)
    app.register_error_handler(RateLimitExceeded, _too_many)
    return limiter


def _limiter(app, settings) -> Limiter:
    return Limiter(
        lambda: client_address(request, settings),
        app=app,
        default_limits=[settings.rate_limit],
        storage_uri=settings.redis_url,
        key_prefix=keys.rate_limits(),
        headers_enabled=True,  # X-RateLimit-* on every response, Retry-After on a 429
        swallow_errors=True,  # Redis down: count in this process instead of failing the request
        in_memory_fallback_enabled=True,
    )


def _too_many(exc: RateLimitExceeded):
    return error_response(429, "rate_limited",
                          f"over the limit of {exc.limit.limit} per client; wait for Retry-After seconds")
