"""Questions being generated, by meaning: a paraphrase of a pending question joins its job."""

import base64
import json

import numpy as np

from precache import keys
from precache.semantic.decision import serves
from precache.semantic.guards import compatible


def register(redis_client, ns: str, job_id: str, question: str, vector: np.ndarray) -> None:
    """Remember a pending job's question and embedding until the job finishes."""
    entry = {"question": question, "vector": base64.b64encode(vector.astype("<f4").tobytes()).decode()}
    redis_client.hset(keys.inflight(ns), job_id, json.dumps(entry))


def forget(redis_client, ns: str, job_id: str) -> None:
    redis_client.hdel(keys.inflight(ns), job_id)


def _vector(entry: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(entry["vector"]), dtype="<f4")


def find(redis_client, ns: str, question: str, vector: np.ndarray, min_similarity: float) -> str | None:
    """Return the job id of the pending question closest in meaning, when close enough and no guard vetoes it.

    A pending question has no answer yet, so no rivals and no margin: its similarity is its confidence,
    decided against `min_similarity` by the same rule as the ladder's semantic tier.
    """
    entries = redis_client.hgetall(keys.inflight(ns))
    best, best_sim = None, min_similarity
    for job_id, raw in entries.items():
        entry = json.loads(raw)
        similarity = float(_vector(entry) @ vector)
        if (serves(similarity, similarity, best_sim, min_similarity)
                and compatible(question, entry["question"]) is None):
            best, best_sim = job_id.decode(), similarity
    return best
