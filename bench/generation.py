"""Generation throughput per backend and batch size: batched against sequential, in the same run.

For each backend and batch size B, the same B chats are generated once as one batch
(`backend.generate(chats)`) and once one after the other (B calls of one chat). Reported: tokens/s
of both, their ratio, the time to the first answer (batched: the whole batch; sequential: the first
call), and the peak memory during the batch (process RSS on CPU; torch's peak allocation on CUDA).

    .venv/bin/python bench/generation.py                       # CPU: SmolLM2 GGUF + a tiny random Llama
    .venv/bin/python bench/generation.py --backends transformers --arch qwen2.5-1.5b --device cuda \\
        --dtype fp16 --quantization none 8bit 4bit --max-new-tokens 128     # a GPU, random Qwen2.5 weights

--mid-batch: the time to the first token of a question that arrives while a batch is being decoded
(it joins the running call at its next step: `admit`, continuous batching) against the same question
on an idle backend, and against waiting for the batch to end (as before joining); llama.cpp only.

    .venv/bin/python bench/generation.py --backends llama_cpp --mid-batch --batch-sizes 8 --max-new-tokens 64

The transformers model is built here from a config with random weights (timing does not depend on
the weights) and its output length is forced to --max-new-tokens; llama.cpp runs the real SmolLM2.
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

QUESTIONS = ["How do I reset my password?", "What is the capital of France?", "Where is my parcel?",
             "How do I cancel my order?", "Can I change my email address?", "What is an API?",
             "Why was my card declined?", "How long does a refund take?"]
# Random-weight configs of real architectures (sizes from the published config.json files).
ARCHS = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=4),
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2, vocab_size=151936),
    "qwen2.5-7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                       num_key_value_heads=4, vocab_size=152064),
}


def chats(n: int) -> list[list[dict]]:
    """The chats a worker sends for n new questions (`chat_for`: its system prompt, then the question)."""
    from precache.config import load_settings
    from worker.batch import chat_for

    settings = load_settings()
    return [chat_for(settings, QUESTIONS[i % len(QUESTIONS)] + f" (case {i})") for i in range(n)]


class PeakMemory:
    """Peak memory in MB while the block runs: torch's CUDA peak, or this process's RSS sampled every 5 ms."""

    def __init__(self, cuda: bool):
        self.cuda, self.peak_mb, self._stop = cuda, 0.0, threading.Event()

    def __enter__(self):
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, proc.memory_info().rss / 2**20)
            time.sleep(0.005)

    def __exit__(self, *exc):
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._stop.set()
            self._thread.join()


def measure(backend, batch: int, max_new_tokens: int, cuda: bool, repeat: int) -> dict:
    """Generate `batch` chats as one batch and one by one, alternately `repeat` times; keep the fastest of each."""
    work = chats(batch)
    best = {"batched_s": float("inf"), "sequential_s": float("inf"), "first_s": float("inf"), "peak_mb": 0.0}
    for _ in range(repeat):  # alternating, so a change in the machine's load hits both modes alike
        with PeakMemory(cuda) as memory:
            start = time.perf_counter()
            batched = backend.generate(work, max_new_tokens)
            best["batched_s"] = min(best["batched_s"], time.perf_counter() - start)
        best["peak_mb"] = max(best["peak_mb"], memory.peak_mb)
        start, first_s, sequential = time.perf_counter(), None, []
        for chat in work:
            sequential += backend.generate([chat], max_new_tokens)
            first_s = first_s or time.perf_counter() - start
        best["sequential_s"] = min(best["sequential_s"], time.perf_counter() - start)
        best["first_s"] = min(best["first_s"], first_s)
    batched_tps = sum(g.completion_tokens for g in batched) / best["batched_s"]
    sequential_tps = sum(g.completion_tokens for g in sequential) / best["sequential_s"]
    return {"batch": batch, "batched_tps": batched_tps, "sequential_tps": sequential_tps,
            "ratio": batched_tps / sequential_tps, "first_batched_s": best["batched_s"],
            "first_sequential_s": best["first_s"], "peak_mb": best["peak_mb"]}


def mid_batch(backend, batch: int, max_new_tokens: int, delay_s: float, repeat: int) -> dict:
    """Time to first token of a chat that arrives `delay_s` into a batch of `batch`, against it on an idle
    backend and against waiting for the batch's end; the median of `repeat` alternating runs of each (where in a
    decoding step it arrives is chance: the fastest run would flatter joining). Each run asks new questions (the
    model holds none of them; all share the worker's system prompt), the idle one and the late one alike."""
    questions, runs = chats(batch + 2 * repeat), {"idle_s": [], "joined_s": [], "after_s": []}
    for k in range(repeat):
        alone, late = questions[batch + 2 * k], questions[batch + 2 * k + 1]
        first: dict = {}
        start = time.perf_counter()
        backend.generate([alone], max_new_tokens, on_token=lambda i, text: first.setdefault(i, time.perf_counter()))
        runs["idle_s"].append(first[0] - start)
        first, arrived, taken = {}, {}, []

        def arrive() -> None:  # as a worker's flush offers a job to the running batch (worker/joining.py)
            arrived["at"] = time.perf_counter()
            backend.hurry()

        def admit(room: int) -> list:  # polled between two steps
            if "at" not in arrived or taken:
                return []
            taken.append(late)
            return [late]

        start = time.perf_counter()
        timer = threading.Timer(delay_s, arrive)
        timer.start()
        backend.generate(chats(batch), max_new_tokens, admit=admit,
                         on_token=lambda i, text: first.setdefault(i, time.perf_counter()))
        timer.join()
        runs["joined_s"].append(first[batch] - arrived["at"])
        start = time.perf_counter()  # before joining: it waited for the whole batch, then started alone
        backend.generate(chats(batch), max_new_tokens)
        ended = time.perf_counter()
        runs["after_s"].append(ended - (start + delay_s) + runs["idle_s"][-1])
    median = {key: statistics.median(values) for key, values in runs.items()}
    return {"batch": batch, **median, "ratio": median["joined_s"] / median["idle_s"]}


def llama_cpp_backend(args):
    from precache.config import load_settings
    from worker.backends import load_backend

    return load_backend(load_settings(llm_backend="llama_cpp", llm_model=args.model, llm_threads=args.threads,
                                      llm_context=4096, llm_gpu_layers=-1 if args.device == "cuda" else 0))


def transformers_backend(args, quantization: str, folder: Path):
    from precache.config import load_settings
    from worker.backends import load_backend

    backend = load_backend(load_settings(llm_backend="transformers", llm_model=str(folder), llm_device=args.device,
                                         llm_dtype=args.dtype, llm_quantization=quantization))
    # Force the output length: no token ends an answer (random weights would stop at random places).
    backend._eos_ids = {backend.model.config.vocab_size + 1}
    return backend


def build_random_model(arch: str, folder: Path) -> None:
    """Save a random-weight Llama/Qwen2 model of `arch` with the SmolLM2 tokenizer (and its chat template)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    from worker.backends.models import resolve_model

    smollm2 = resolve_model("smollm2")
    tokenizer = AutoTokenizer.from_pretrained(smollm2.path_or_id, gguf_file=smollm2.gguf_file)
    shape = {"vocab_size": len(tokenizer), "max_position_embeddings": 4096, **ARCHS[arch]}
    config_cls, model_cls = (LlamaConfig, LlamaForCausalLM) if arch == "tiny" else (Qwen2Config, Qwen2ForCausalLM)
    torch.manual_seed(0)
    model_cls(config_cls(**shape, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def run(args) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="precache-bench-") as folder:
        return _run(args, Path(folder))


def _run(args, folder: Path) -> list[dict]:
    rows = []
    setups = []
    if "llama_cpp" in args.backends:
        label = "SmolLM2-135M Q4_1 GGUF" if args.model == "smollm2" else Path(args.model).name
        setups.append(("llama_cpp", label, lambda: llama_cpp_backend(args)))
    if "transformers" in args.backends:
        build_random_model(args.arch, folder)
        for quantization in args.quantization:
            label = f"{args.arch} random, {args.dtype}" + (f", {quantization}" if quantization != "none" else "")
            setups.append(("transformers", label, lambda q=quantization: transformers_backend(args, q, folder)))
    for name, label, make in setups:
        backend = make()
        print(f"<!-- {name}, {label}: weights {weights_mb(backend):.0f} MB -->", flush=True)
        backend.generate(chats(2), 4)  # warm up
        for batch in args.batch_sizes:
            row = {"backend": name, "model": label,
                   **measure(backend, batch, args.max_new_tokens, args.device == "cuda", args.repeat)}
            print(_line(row), flush=True)
            rows.append(row)
        backend.close()
    return rows


def weights_mb(backend) -> float:
    """Memory of the model's weights: the GGUF file for llama.cpp, parameters and buffers for transformers."""
    if backend.name == "llama_cpp":
        return os.path.getsize(backend.llm.model_path) / 2**20
    return backend.model.get_memory_footprint() / 2**20


def _line(row: dict) -> str:
    return (f"| {row['backend']} | {row['model']} | {row['batch']} | {row['batched_tps']:.1f} | "
            f"{row['sequential_tps']:.1f} | **{row['ratio']:.2f}×** | {row['first_batched_s']:.2f} | "
            f"{row['first_sequential_s']:.2f} | {row['peak_mb']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", nargs="+", default=["llama_cpp", "transformers"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 2, 4, 8, 16])
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2,
                        help="alternating runs per batch size: the fastest counts (--mid-batch: the median)")
    parser.add_argument("--arch", choices=sorted(ARCHS), default="tiny", help="transformers model shape")
    parser.add_argument("--dtype", choices=["auto", "fp32", "fp16", "bf16"], default="auto")
    parser.add_argument("--quantization", nargs="+", choices=["none", "8bit", "4bit"], default=["none"])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--model", default="smollm2", help="llama_cpp: the GGUF (a path, or smollm2: the shipped one)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--mid-batch", action="store_true", help="time to first token of a question joining a batch")
    parser.add_argument("--delay", type=float, default=0.5, help="--mid-batch: seconds into the batch it arrives")
    args = parser.parse_args()
    if args.mid_batch:
        backend = llama_cpp_backend(args)
        backend.generate(chats(2), 4)  # warm up
        print(f"device: {_device_name(args.device)}; max new tokens {args.max_new_tokens}; arrives {args.delay} s in")
        print("| batch | first token, idle (s) | joining the batch (s) | joining ÷ idle | waiting for the batch (s) |")
        print("|---|---|---|---|---|")
        for batch in args.batch_sizes:
            row = mid_batch(backend, batch, args.max_new_tokens, args.delay, args.repeat)
            print(f"| {batch} | {row['idle_s']:.3f} | {row['joined_s']:.3f} | **{row['ratio']:.2f}×** | "
                  f"{row['after_s']:.2f} |", flush=True)
        backend.close()
        return
    print(f"device: {_device_name(args.device)}; max new tokens {args.max_new_tokens}")
    print("| backend | model | batch | batched tok/s | sequential tok/s | batched ÷ sequential | first answer, "
          "batched (s) | first answer, sequential (s) | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    run(args)


def _device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name(0)
    return f"CPU, {os.cpu_count()} cores ({_cpu_model()})"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
