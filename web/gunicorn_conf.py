"""gunicorn settings used by `precache web`: a worker that exits writes its waiting asks; clean Prometheus files of dead workers."""

from prometheus_client import multiprocess


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker):
    """In the exiting worker: write the asks it took that are not in SQL yet (precache.asklog)."""
    app = getattr(worker, "wsgi", None)
    extensions = getattr(app, "extensions", {})
    if "precache" in extensions:
        extensions["precache"].close()
