"""Questions being generated, by meaning: a paraphrase of a pending question joins its job."""

import base64
import json

import numpy as np

from precache import keys
from precache.guards import compatible


def register(redis_client, ns: str, job_id: str, question: str, vector: np.ndarray) -> None:
    """Remember a pending job's question and embedding until the job finishes."""
    entry = {"question": question, "vector": base64.b64encode(vector.astype("<f4").tobytes()).decode()}
    redis_client.hset(keys.inflight(ns), job_id, json.dumps(entry))


def forget(redis_client, ns: str, job_id: str) -> None:
    redis_client.hdel(keys.inflight(ns), job_id)


def find(redis_client, ns: str, question: str, vector: np.ndarray, min_similarity: float) -> str | None:
    """Return the job id of the pending question closest in meaning, when close enough and no guard vetoes it."""
    entries = redis_client.hgetall(keys.inflight(ns))
    best, best_sim = None, min_similarity
    for job_id, raw in entries.items():
        entry = json.loads(raw)
        other = np.frombuffer(base64.b64decode(entry["vector"]), dtype="<f4")
        similarity = float(other @ vector)
        if similarity >= best_sim and compatible(question, entry["question"]) is None:
            best, best_sim = job_id.decode(), similarity
    return best
