"""Repetition penalty of decoding against the quality gate: how many generated answers it lets through.

SmolLM2-135M (the packaged GGUF, llama.cpp, greedy) answers StackFAQ user paraphrases (a seeded
sample, as the workload's misses are) at each PRECACHE_LLM_REPETITION_PENALTY, with the worker's
chat and token limit. Each answer is trimmed and scored as the worker does (worker.quality, no
reference). The bench prints the share above the gate, the penalties that fired and the mean
relevance, and also the cosine of each answer to the FAQ entry's real answer (not part of the
score). Penalty 1.0 (none) is the baseline of the same run.

    .venv/bin/python bench/repetition.py --questions 60 --penalties 1.0 1.1 1.2
"""

import argparse
import collections
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from precache.config import load_settings  # noqa: E402
from precache.semantic.embedders import embedder_for  # noqa: E402
from worker.backends import load_backend  # noqa: E402
from worker.batch import chat_for  # noqa: E402
from worker.quality import Scorer, finished  # noqa: E402


def paraphrases(path: Path, n: int, seed: int) -> list[tuple[str, str]]:
    """Return n (paraphrase, the entry's answer) pairs, a seeded sample."""
    pairs = [(r.strip(), " ".join(e["answer"]) if isinstance(e["answer"], list) else e["answer"])
             for e in json.loads(path.read_text(encoding="utf-8"))["root"]["qapair"]
             for r in e.get("rephr") or [] if isinstance(r, str) and r.strip() not in ("", "*")]
    return random.Random(seed).sample(pairs, min(n, len(pairs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--penalties", type=float, nargs="+", default=[1.0, 1.1, 1.2])
    parser.add_argument("--max-new-tokens", type=int, default=128, help="the quick answer's default")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    asks = paraphrases(args.data / "stackfaq" / "stackExchange-FAQ.json", args.questions, args.seed)
    base = load_settings(llm_backend="llama_cpp", llm_model="smollm2", llm_threads=args.threads)
    embedder = embedder_for(base, threads=None)
    scorer = Scorer(embedder)
    print(f"{len(asks)} StackFAQ paraphrases, SmolLM2-135M GGUF on llama.cpp, greedy, {args.max_new_tokens} new "
          f"tokens, gate at quality {base.quality_threshold}")
    rows = []
    for penalty in args.penalties:
        settings = load_settings(**{**base.model_dump(), "llm_repetition_penalty": penalty})
        backend = load_backend(settings)
        started, scores, gold, tokens = time.perf_counter(), [], [], 0
        try:
            for question, answer in asks:
                gen = backend.generate([chat_for(settings, question)], args.max_new_tokens)[0]
                text, finish = finished(gen.text, gen.finish_reason)
                scores.append(scorer.score(question, text, mean_logprob=gen.mean_logprob, finish_reason=finish))
                vectors = embedder.encode([text or " ", answer])
                gold.append(float(vectors[0] @ vectors[1]))
                tokens += gen.completion_tokens
        finally:
            backend.close()
        passed = sum(s.quality >= settings.quality_threshold for s in scores)
        fired = collections.Counter(name for s in scores for name in ("truncated", "repetition", "refusal", "language")
                                    if s.components.get(name, 1.0) < 1.0)
        rows.append((penalty, passed, fired, np.mean([s.components.get("relevance", 0) for s in scores]),
                     np.mean(gold), tokens / len(asks), time.perf_counter() - started))
    print(f"\n| penalty | above the gate | ratio to 1.0 | penalties that fired | mean relevance | cosine to the "
          f"FAQ's answer | tokens an answer | s |")
    print("|---|---|---|---|---|---|---|---|")
    baseline = next((passed for penalty, passed, *_ in rows if penalty == 1.0), None)
    for penalty, passed, fired, relevance, gold, tokens, seconds in rows:
        ratio = f"{passed / baseline:.2f}×" if baseline else "-"
        print(f"| {penalty:g} | {passed} / {len(asks)} ({passed / len(asks):.0%}) | {ratio} | "
              f"{', '.join(f'{k} {v}' for k, v in fired.most_common()) or 'none'} | {relevance:.3f} | {gold:.3f} | "
              f"{tokens:.0f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
