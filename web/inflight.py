"""Questions being generated, by meaning: a paraphrase of a pending question joins its job.

Entries leave when their job finishes; one whose job was lost leaves after MAX_AGE_S (read past, then
deleted), and the hash of a namespace nobody asks in expires whole.
"""

import base64
import json
import time

import numpy as np

from precache import keys
from precache.semantic.decision import serves
from precache.semantic.guards import compatible

MAX_AGE_S = 86400  # as long as a job record lasts by default (PRECACHE_JOB_TTL_S)


def register(redis_client, ns: str, job_id: str, question: str, vector: np.ndarray) -> None:
    """Remember a pending job's question and embedding until the job finishes."""
    entry = {"question": question, "vector": base64.b64encode(vector.astype("<f4").tobytes()).decode(),
             "at": time.time()}
    pipe = redis_client.pipeline(transaction=False)
    pipe.hset(keys.inflight(ns), job_id, json.dumps(entry))
    pipe.expire(keys.inflight(ns), MAX_AGE_S)
    pipe.execute()


def forget(redis_client, ns: str, job_id: str) -> None:
    redis_client.hdel(keys.inflight(ns), job_id)


def _vector(entry: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(entry["vector"]), dtype="<f4")


def find(redis_client, ns: str, question: str, vector: np.ndarray, min_similarity: float) -> str | None:
    """Return the job id of the pending question closest in meaning, when close enough and no guard vetoes it.

    A pending question has no answer yet, so no rivals and no margin: its similarity is its confidence,
    decided against `min_similarity` by the same rule as the ladder's semantic tier.
    """
    entries = {job_id: json.loads(raw) for job_id, raw in redis_client.hgetall(keys.inflight(ns)).items()}
    best, best_sim, oldest = None, min_similarity, time.time() - MAX_AGE_S
    lapsed = [job_id for job_id, entry in entries.items() if entry.get("at", 0) < oldest]
    if lapsed:  # their jobs were lost, or entries from before entries had a time
        redis_client.hdel(keys.inflight(ns), *lapsed)
    for job_id, entry in entries.items():
        if job_id in lapsed:
            continue
        similarity = float(_vector(entry) @ vector)
        if (serves(similarity, similarity, best_sim, min_similarity)
                and compatible(question, entry["question"]) is None):
            best, best_sim = job_id.decode(), similarity
    return best
