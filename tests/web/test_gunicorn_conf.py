"""gunicorn settings of `precache web` (web/gunicorn_conf.py): a worker that exits writes the asks it took."""

from tests.precache.test_asklog import logged
from web import create_app


def test_a_gunicorn_worker_that_exits_writes_the_asks_it_took(config, ctx):
    from types import SimpleNamespace

    from web import gunicorn_conf

    app = create_app(config | {"ask_log_flush_ms": 3_600_000})
    app.test_client().post("/v1/ask", json={"question": "hello"})
    assert logged(ctx) == []
    gunicorn_conf.worker_exit(None, SimpleNamespace(wsgi=app))
    assert [r.source for r in logged(ctx)] == ["template"]
