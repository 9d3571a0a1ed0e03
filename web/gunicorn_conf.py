"""gunicorn settings used by `precache web`: clean Prometheus multiprocess files of dead workers."""

from prometheus_client import multiprocess


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)
