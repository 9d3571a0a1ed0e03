"""llama.cpp backend: a GGUF model run by llama-cpp-python, on CPU or with layers offloaded to a GPU."""

import codecs
import os

import numpy as np

from worker.backends.base import Backend, BackendError, Generation, GenerationStopped, Message, OnToken, one_line
from worker.backends.models import resolve_model

try:
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
except ImportError:  # reported by load(), so that the registry can still import this module
    llama_cpp = None


class LlamaCppBackend(Backend):
    """Generate with llama.cpp, one chat after the other.

    llama-cpp-python's high-level API holds one sequence per context: it does not batch independent
    sequences, so a batch of chats is generated one after the other (docs/generation.md, "Batching").
    Decoding is greedy (argmax of the logits), or sampled at a temperature from a seeded generator,
    after the repetition penalty (PRECACHE_LLM_REPETITION_PENALTY) on the answer's tokens so far;
    the end-of-turn token ends an answer but is not counted in it, and mean_logprob is the mean
    log-softmax of the chosen tokens (under the model's own logits: untempered, unpenalised).
    """

    name = "llama_cpp"
    sequential = True
    _stop = None  # the stop event of the running `generate`

    def load(self) -> None:
        """Load the GGUF file (a path, or a file of a hub repo) and its chat template."""
        hub = bool(self.settings.llm_model_file)
        path = None if hub else resolve_model(self.settings.llm_model).gguf_path
        if not hub and path is None:
            raise BackendError(
                f"the llama_cpp backend needs a GGUF file; PRECACHE_LLM_MODEL={self.settings.llm_model!r} is "
                "not one (for a hub repo, also set PRECACHE_LLM_MODEL_FILE to the .gguf file name in it)"
            )
        if llama_cpp is None:
            raise BackendError("llama-cpp-python is not installed; pip install 'precache[llama]'")
        self.llm = self._from_hub() if hub else self._open(path)
        self._vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self._formatter = self._chat_formatter(self.llm.model_path)
        self._stop_ids = self._stop_token_ids()

    def _params(self) -> dict:
        return {
            "n_ctx": self.settings.llm_context,
            "n_threads": self.settings.llm_threads or os.cpu_count(),
            "n_gpu_layers": self.settings.llm_gpu_layers,
            "verbose": False,
        }

    def _open(self, path) -> "llama_cpp.Llama":
        try:
            return llama_cpp.Llama(model_path=str(path), **self._params())
        except Exception as exc:
            raise BackendError(f"cannot load GGUF model {path}: {one_line(exc)}") from exc

    def _from_hub(self) -> "llama_cpp.Llama":
        """Download the file once into the hub cache (huggingface_hub), then load it from there."""
        repo, filename = self.settings.llm_model, self.settings.llm_model_file
        try:
            return llama_cpp.Llama.from_pretrained(repo_id=repo, filename=filename, **self._params())
        except Exception as exc:
            raise BackendError(
                f"cannot get {filename} from hub repo {repo} ({one_line(exc)}); without a hub, download the file "
                "and set PRECACHE_LLM_MODEL to its path and PRECACHE_LLM_MODEL_FILE to nothing"
            ) from exc

    def generate(self, chats: list[list[Message]], max_new_tokens: int, temperature: float = 0.0,
                 seed: int = 0, on_token: OnToken | None = None, stop=None) -> list[Generation]:
        """Answer each chat in turn."""
        rng = np.random.default_rng(seed) if temperature > 0 else None
        self._stop = stop
        return [self._generate_one(chat, max_new_tokens, temperature, rng,
                                   (lambda text, i=i: on_token(i, text)) if on_token else None)
                for i, chat in enumerate(chats)]

    def close(self) -> None:
        """Free the model while the library is still loaded (not at interpreter exit)."""
        if getattr(self, "llm", None) is not None:
            self.llm.close()
            self.llm = None

    def _chat_formatter(self, path) -> "Jinja2ChatFormatter":
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise BackendError(f"GGUF model {path} has no tokenizer.chat_template; use an instruct/chat model")
        return Jinja2ChatFormatter(
            template=template,
            eos_token=self._token_text(self.llm.token_eos()),
            bos_token=self._token_text(self.llm.token_bos()),
            stop_token_ids=[self.llm.token_eos()],
        )

    def _token_text(self, token: int) -> str:
        return "" if token < 0 else self.llm.detokenize([token], special=True).decode("utf-8", "replace")

    def _stop_token_ids(self) -> set[int]:
        ids = {self.llm.token_eos()}
        # The template's stop strings (such as <|im_end|>) are special tokens of their own.
        for stop in self._formatter(messages=[]).stop or []:
            tokens = self.llm.tokenize(stop.encode(), add_bos=False, special=True)
            if len(tokens) == 1:
                ids.add(tokens[0])
        return ids

    def _generate_one(self, chat: list[Message], max_new_tokens: int, temperature: float = 0.0,
                      rng: np.random.Generator | None = None, emit=None) -> Generation:
        prompt = self._formatter(messages=chat).prompt
        # The template writes any BOS itself, as Transformers' apply_chat_template does.
        tokens = self.llm.tokenize(prompt.encode(), add_bos=False, special=True)
        budget = min(max_new_tokens, self.llm.n_ctx() - len(tokens))
        if budget <= 0:
            raise BackendError(
                f"prompt of {len(tokens)} tokens does not fit the context of "
                f"{self.llm.n_ctx()} tokens (PRECACHE_LLM_CONTEXT)"
            )
        self.llm.reset()
        answer, logprobs, finish = self._decode(tokens, budget, temperature, rng, emit)
        text = self.llm.detokenize(answer).decode("utf-8", "replace").strip()
        mean = float(np.mean(logprobs)) if logprobs else 0.0
        return Generation(text, len(tokens), len(answer), mean, finish)

    def _decode(self, prompt: list[int], budget: int, temperature: float = 0.0,
                rng: np.random.Generator | None = None, emit=None) -> tuple[list[int], list[float], str]:
        answer, logprobs, pending = [], [], prompt
        # A token may end inside a UTF-8 character: the decoder holds such bytes until the next one.
        text = codecs.getincrementaldecoder("utf-8")("replace")
        finish = "length"
        while len(answer) < budget:
            if self._stop is not None and self._stop.is_set():
                raise GenerationStopped("stopped between two tokens, as asked")
            self.llm.eval(pending)
            token, logprob = self._next_token(temperature, rng, answer)
            if token in self._stop_ids or llama_cpp.llama_vocab_is_eog(self._vocab, token):
                finish = "stop"
                break
            answer.append(token)
            logprobs.append(logprob)
            pending = [token]
            if emit is not None and (piece := text.decode(self.llm.detokenize([token]))):
                emit(piece)
        if emit is not None and (rest := text.decode(b"", final=True)):
            emit(rest)
        return answer, logprobs, finish

    def _next_token(self, temperature: float = 0.0, rng: np.random.Generator | None = None,
                    answer: list[int] = ()) -> tuple[int, float]:
        """Return the next token (argmax, or sampled at `temperature`) and its log-probability."""
        # Read the logits of the last decoded position: llm.scores is only filled with logits_all=True.
        pointer = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(self.llm.n_vocab(),)).astype(np.float64)
        top = float(logits.max())
        log_probs = logits - (top + np.log(np.exp(logits - top).sum()))
        chosen = penalise_repeats(logits, answer, self.settings.llm_repetition_penalty)
        if temperature > 0 and rng is not None:
            tempered = np.exp((chosen - chosen.max()) / temperature)
            token = int(rng.choice(len(chosen), p=tempered / tempered.sum()))
        else:
            token = int(np.argmax(chosen))
        return token, float(log_probs[token])


def penalise_repeats(logits: np.ndarray, tokens, penalty: float) -> np.ndarray:
    """Return the logits with those of `tokens` divided by `penalty` (multiplied when negative): Transformers' rule."""
    if penalty == 1.0 or not len(tokens):
        return logits
    seen = np.unique(np.asarray(tokens, dtype=np.int64))
    out = logits.copy()
    out[seen] = np.where(out[seen] > 0, out[seen] / penalty, out[seen] * penalty)
    return out
