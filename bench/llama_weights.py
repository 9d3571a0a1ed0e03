"""What the weights' format does to llama.cpp's batching on this machine: the shipped SmolLM2 GGUF (Q4_1) against
the same weights requantized (llama.cpp's own quantizer) into formats that have faster batched kernels here.

For each format: the time of one decoding step of 1 and of 8 sequences (the backend's own batch decoding, the
worker's chats, flash attention as the backend sets it), their ratio per token (the most batching can give), and
the perplexity of StackFAQ's reference answers after their questions (what the format costs in quality; the
shipped file is the baseline).

    .venv/bin/python bench/llama_weights.py                       # q4_1 (shipped), q8_0, q4_0, iq4_nl
"""

import argparse
import ctypes
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llama_cpp
import numpy as np

from precache.config import load_settings
from worker.backends import load_backend
from worker.backends.models import resolve_model
from worker.batch import chat_for

FORMATS = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
           "iq4_nl": llama_cpp.LLAMA_FTYPE_MOSTLY_IQ4_NL, "q5_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_0,
           "f16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16}
DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "stackfaq" / "stackExchange-FAQ.json"


def requantize(source: Path, name: str, folder: Path) -> Path:
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize = FORMATS[name], True
    target = folder / f"smollm2-{name}.gguf"
    if llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params)) != 0:
        raise SystemExit(f"llama.cpp could not requantize {source} into {name}")
    return target


def step_times(path: Path, steps: int) -> dict:
    """Median milliseconds of a decoding step with 1 and with 8 live sequences."""
    backend = load_backend(load_settings(llm_backend="llama_cpp", llm_model=str(path), llm_context=1024))
    decode, times = llama_cpp.llama_decode, {}

    def timed(ctx, batch):
        start = time.perf_counter()
        status = decode(ctx, batch)
        times.setdefault(batch.n_tokens, []).append(time.perf_counter() - start)
        return status

    llama_cpp.llama_decode = timed
    try:
        settings = load_settings()
        for n in (1, 8):
            chats = [chat_for(settings, "Write a long story about a robot. " + f"(case {i})") for i in range(n)]
            backend.generate(chats, steps)
    finally:
        llama_cpp.llama_decode = decode
        backend.close()
    return {n: 1000 * statistics.median(times[n]) for n in (1, 8)}


def perplexity(path: Path, pairs: int) -> float:
    """exp of the mean negative log-likelihood of StackFAQ answers (first 120 tokens) after their questions."""
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=1024, logits_all=True, verbose=False)
    total, count = 0.0, 0
    for pair in json.loads(DATA.read_text())["root"]["qapair"][:pairs]:
        prompt = f"<|im_start|>user\n{pair['question']}<|im_end|>\n<|im_start|>assistant\n"
        head = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        answer = llm.tokenize(" ".join(pair["answer"]).encode(), add_bos=False)[:120]
        llm.reset()
        llm.eval(head + answer)
        logits = np.asarray(llm.scores[len(head) - 1:len(head) + len(answer) - 1], dtype=np.float64)
        top = logits.max(axis=1, keepdims=True)
        norms = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        total += float((logits[np.arange(len(answer)), answer] - norms).sum())
        count += len(answer)
    llm.close()
    return float(np.exp(-total / count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--formats", nargs="+", choices=sorted(FORMATS), default=["q8_0", "q4_0", "iq4_nl"])
    parser.add_argument("--steps", type=int, default=64, help="decoding steps timed per batch size")
    parser.add_argument("--pairs", type=int, default=40, help="StackFAQ answers scored for the perplexity")
    args = parser.parse_args()
    shipped = Path(resolve_model("smollm2").gguf_path)
    print("| weights | MB | step of 1 (ms) | step of 8 (ms) | per token, 8 ÷ 1 | perplexity |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name in ["q4_1 (shipped)", *args.formats]:
            path = shipped if name.startswith("q4_1") else requantize(shipped, name, Path(folder))
            ms = step_times(path, args.steps)
            print(f"| {name} | {path.stat().st_size / 1e6:.0f} | {ms[1]:.1f} | {ms[8]:.1f} | "
                  f"**{8 * ms[1] / ms[8]:.2f}×** | {perplexity(path, args.pairs):.2f} |", flush=True)


if __name__ == "__main__":
    main()
