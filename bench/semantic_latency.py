"""Latency of the semantic tier's parts in the web: encoding one question, searching, deciding.

    .venv/bin/python bench/semantic_latency.py [--threads 1 2] [--sizes 1000 20000 100000]
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

QUESTIONS = ["How do I reset my password?", "hi", ("My card payment was declined twice yesterday at a shop in "
             "Madrid, although I had more than 200 euros on my account. What is going on?")]


def percentiles(samples: list[float]) -> str:
    ms = np.array(samples) * 1000
    return f"p50 {np.percentile(ms, 50):6.2f} ms  p95 {np.percentile(ms, 95):6.2f} ms"


def timed(fn, repeat: int) -> list[float]:
    fn()  # warm up
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def encode_latency(threads: int, repeat: int) -> None:
    import torch

    from precache.embedder import Embedder

    embedder = Embedder(threads=threads)
    embedder.encode(["warm up"])
    torch.set_num_threads(threads)
    for q in QUESTIONS:
        print(f"encode, torch {threads} thread(s), {len(q):3d} chars: {percentiles(timed(lambda q=q: embedder.encode([q]), repeat))}")


def index_latency(size: int, repeat: int) -> None:
    from precache.semantic import SemanticIndex

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((size, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = [f"cached question number {i}" for i in range(size)]
    for ann_min in (10**9, 1):
        index = SemanticIndex(ann_min_size=ann_min)
        start = time.perf_counter()
        index.add(list(range(size)), [str(i) for i in range(size)], texts, vectors)
        built = time.perf_counter() - start
        query = vectors[7] + 0.05 * rng.standard_normal(384).astype(np.float32)
        query /= np.linalg.norm(query)
        kind = "hnswlib" if index.vectors.uses_ann else "exact  "
        print(f"match, {kind} {size:>7} cached (built in {built:6.2f} s): "
              f"{percentiles(timed(lambda i=index, v=query: i.match('cached question number 7', v), repeat))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000, 100000])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    for threads in args.threads:
        encode_latency(threads, args.repeat)
    for size in args.sizes:
        index_latency(size, args.repeat)


if __name__ == "__main__":
    main()
