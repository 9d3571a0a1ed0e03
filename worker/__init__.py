"""The Celery app that `celery -A worker worker` finds, and the worker's process state."""

from precache.config import load_settings
from precache.queueing import make_celery

app = make_celery(load_settings, include=["worker.tasks", "worker.liveness", "worker.signals"])
celery = app
