"""Latency of the semantic tier's parts in the web: encoding one question, searching, deciding.

    .venv/bin/python bench/semantic_latency.py [--threads 1 2] [--backends torch onnx onnx-int8] [--sizes 1000 20000]

Encoding is measured for every backend and thread count in interleaved rounds of the same run (the
CPUs are shared: a slow minute hits every contender), and reported as p50 and as a ratio to torch on
one thread, the baseline.
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


def encode_latency(backends: list[str], threads: list[int], repeat: int, rounds: int) -> None:
    import torch

    from precache.semantic.embedders import Embedder

    contenders = {(b, t): Embedder(threads=t, backend=b) for b in backends for t in threads}
    for embedder in contenders.values():
        embedder.encode(["warm up"])  # loads (and on first use exports) the model
    samples = {(key, q): [] for key in contenders for q in QUESTIONS}
    for _ in range(rounds):
        for (backend, n), embedder in contenders.items():
            torch.set_num_threads(n)  # torch's threads are per process; ONNX Runtime's per session
            for q in QUESTIONS:
                samples[(backend, n), q] += timed(lambda e=embedder, q=q: e.encode([q]), repeat // rounds)
    base = {q: np.percentile(samples[("torch", 1), q], 50) for q in QUESTIONS if (("torch", 1), q) in samples}
    for (backend, n), q in samples:
        ratio = f"  {np.percentile(samples[(backend, n), q], 50) / base[q]:5.2f}x torch/1" if q in base else ""
        print(f"encode, {backend:<9} {n} thread(s), {len(q):3d} chars: {percentiles(samples[(backend, n), q])}{ratio}")


def index_latency(size: int, repeat: int) -> None:
    from precache.semantic.index import SemanticIndex

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
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds the encode samples are split into")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000, 100000])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    encode_latency(args.backends, args.threads, args.repeat, args.rounds)
    for size in args.sizes:
        index_latency(size, args.repeat)


if __name__ == "__main__":
    main()
