"""llama.cpp backend: a GGUF model run by llama-cpp-python, on CPU or with layers offloaded to a GPU; the chats of a
batch are decoded together, one sequence each in one context."""

import codecs
import ctypes
import heapq
import logging
import os
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from worker.backends.base import Backend, BackendError, Generation, GenerationStopped, Message, OnToken, one_line
from worker.backends.models import resolve_model

try:
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
except ImportError:  # reported by load(), so that the registry can still import this module
    llama_cpp = None


ABORTED = 2  # llama_decode's status for a decode its abort callback ended
# Prompt tokens that another sequence's cells must save before they are copied rather than decoded, for caches of
# 2,048 tokens a sequence: copying such a cache costs about what decoding 3 prompt tokens does (2 CPU cores).
COPY_GAIN = 8


class LlamaCppBackend(Backend):
    """Generate with llama.cpp, the chats of a batch decoded together.

    llama-cpp-python's high-level API holds one sequence per context, so this backend drives llama.cpp's batch
    API itself: one context holds PRECACHE_LLM_MAX_BATCH sequences, each with a KV cache of PRECACHE_LLM_CONTEXT
    tokens of its own, and each llama_decode takes one token of every unfinished answer (the whole prompt of a
    chat that starts). An answer that ends leaves the batch and its cells are removed; a larger batch's next
    chat takes its sequence. Decoding is greedy (argmax of the logits), or sampled at a temperature from a
    seeded generator, after the repetition penalty (PRECACHE_LLM_REPETITION_PENALTY) on that answer's tokens so
    far; the end-of-turn token ends an answer but is not counted in it, and mean_logprob is the mean
    log-softmax of the chosen tokens (under the model's own logits: untempered, unpenalised).
    """

    name = "llama_cpp"
    sequential = False  # a batch's chats are decoded together
    joins = True  # chats join a running call between two decoding steps (`admit`)

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
        self._n_vocab = self.llm.n_vocab()
        self._ctx, self._batch = self._batch_context()

    def _params(self) -> dict:
        return {
            "n_ctx": 256,  # the Llama object tokenizes and reads the model's metadata; its own context decodes nothing
            "n_threads": self._threads(),
            "n_gpu_layers": self.settings.llm_gpu_layers,
            "verbose": False,
        }

    def _threads(self) -> int:
        return self.settings.llm_threads or os.cpu_count()

    def _batch_context(self):
        """Open the context that decodes a batch's chats together, and the llama_batch that feeds it."""
        n_seq = self.settings.llm_max_batch + self.settings.llm_join_room  # room for chats that join a full batch
        context = -(-self.settings.llm_context // 256) * 256  # llama.cpp rounds a context up to a multiple of 256
        params = llama_cpp.llama_context_default_params()
        params.n_seq_max = n_seq
        # Not unified: each sequence has `context` cells of its own, and attends over its own cells only.
        params.kv_unified = False
        params.n_ctx = params.n_batch = n_seq * context  # n_batch: one decode takes every prompt of a batch
        params.n_threads = params.n_threads_batch = self._threads()
        # Flash attention where the device has it (llama.cpp decides; the CPU does): a step of 8 sequences costs a
        # quarter less on two CPU cores, a step of one the same (docs/benchmarks.md, "Batched generation").
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
        ctx = llama_cpp.llama_init_from_model(self.llm.model, params)
        if ctx is None:
            raise BackendError(f"cannot open a llama.cpp context of {n_seq} sequences of {context} tokens "
                               "(PRECACHE_LLM_MAX_BATCH, PRECACHE_LLM_CONTEXT): not enough memory?")
        self._held = [[] for _ in range(n_seq)]  # the tokens whose cells each free sequence still holds
        self._hurry, self._room = Hurry(), 0
        return ctx, llama_cpp.llama_batch_init(n_seq * context, 0, 1)

    def hurry(self) -> None:
        """Chats wait to join: end the step under way early where it may be (a step of answer tokens, with room)."""
        if getattr(self, "_room", 0) > 0:  # 0 too before load and between calls
            self._hurry.set()

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
                 seed: int = 0, on_token: OnToken | None = None, stop=None, admit=None) -> list[Generation]:
        """Answer the chats, decoded together: LLM_MAX_BATCH at a time, a chat starting when one before it ends;
        `admit(room)`'s chats join between two steps (continuous batching: Backend.generate), into the
        LLM_JOIN_ROOM sequences beyond LLM_MAX_BATCH too."""
        answers = [self._answer(i, chat, max_new_tokens) for i, chat in enumerate(chats)]
        rng = np.random.default_rng(seed) if temperature > 0 else None

        def joining(room: int) -> list[_Answer]:
            joined = [self._joined(len(answers) + k, chat, max_new_tokens) for k, chat in enumerate(admit(room))]
            answers.extend(joined)
            return [answer for answer in joined if not answer.finish]

        self._decode(answers, temperature, rng, on_token, stop, joining if admit is not None else None)
        return [self._generation(answer) for answer in answers]

    def _joined(self, index: int, chat: list[Message], max_new_tokens: int) -> "_Answer":
        """The answer of a chat that joins a running call; one that cannot fit ends at once, empty (its job fails
        alone, not the batch)."""
        try:
            return self._answer(index, chat, max_new_tokens)
        except BackendError:
            return _Answer(index, [], 0, finish="length")

    def close(self) -> None:
        """Free the context and the model while the library is still loaded (not at interpreter exit)."""
        if getattr(self, "_ctx", None) is not None:
            llama_cpp.llama_batch_free(self._batch)
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
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

    def _answer(self, index: int, chat: list[Message], max_new_tokens: int) -> "_Answer":
        prompt = self._formatter(messages=chat).prompt
        # The template writes any BOS itself, as Transformers' apply_chat_template does.
        tokens = self.llm.tokenize(prompt.encode(), add_bos=False, special=True)
        context = llama_cpp.llama_n_ctx_seq(self._ctx)
        budget = min(max_new_tokens, context - len(tokens))
        if budget <= 0:
            raise BackendError(
                f"prompt of {len(tokens)} tokens does not fit the context of {context} tokens (PRECACHE_LLM_CONTEXT)"
            )
        return _Answer(index, tokens, budget)

    def _decode(self, answers: list["_Answer"], temperature: float, rng: np.random.Generator | None,
                on_token: OnToken | None, stop, joining=None) -> None:
        """Decode the answers together: each step adds one token to every live answer, in one llama_decode.
        `joining(room)`: answers that join before a step, while sequences are free."""
        memory = llama_cpp.llama_get_memory(self._ctx)
        waiting, live, free = deque(answers), [], list(range(llama_cpp.llama_n_seq_max(self._ctx)))
        limit = self.settings.llm_max_batch  # the call's own chats; joiners may take the room beyond it
        try:
            while True:
                starting = min(len(waiting), len(free), max(0, limit - len(live)))
                self._room = len(free) - starting if joining is not None else 0
                self._hurry.clear()  # before joiners are taken: one offered after this ends the next step early
                if joining is not None and len(free) > starting:
                    for answer in joining(len(free) - starting):  # a chat starts in the lowest free sequence
                        self._start(answer, heapq.heappop(free), live, memory)
                while waiting and free and len(live) < limit:
                    self._start(waiting.popleft(), heapq.heappop(free), live, memory)
                if not live:
                    break
                self._pack(live, free, memory)
                if stop is not None and stop.is_set():
                    raise GenerationStopped("stopped between two tokens, as asked")
                for group in prompts_first(live):
                    if not self._advance(group, free, temperature, rng, on_token):
                        break  # ended early for chats that wait to join: they start, then the step is done again
                live = [answer for answer in live if not answer.finish]
        except BaseException:  # a stop, or a failed decode: what the sequences hold is no longer known
            llama_cpp.llama_memory_clear(memory, False)
            self._held = [[] for _ in self._held]
            raise
        finally:
            self._room = 0
            self._hurry.clear()

    def _advance(self, group: list["_Answer"], free: list[int], temperature: float, rng: np.random.Generator | None,
                 on_token: OnToken | None) -> bool:
        """Decode the group's pending tokens and choose each answer's next one; an answer that ends frees its
        sequence. False when the step ended early (`hurry`): nothing of it is kept."""
        if (logits := self._step(group, abortable=self._room > 0)) is None:
            return False
        top = logits.max(axis=1, keepdims=True)
        log_norms = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1, dtype=np.float64))
        for answer, row, log_norm in zip(group, logits, log_norms):
            self._extend(answer, row, log_norm, temperature, rng, on_token)
            if answer.finish:  # its cells stay: the next chat in the sequence reuses their common prefix
                self._held[answer.seq] = answer.cells()
                heapq.heappush(free, answer.seq)
        return True

    def _start(self, answer: "_Answer", seq: int, live: list["_Answer"], memory) -> None:
        """Start the answer in sequence `seq` (it joins `live`), reusing the longest prefix of its prompt that a
        sequence holds.

        Chats share their opening (the chat template, the system prompt): their tokens are decoded once, not once
        per chat. The sequence's own cells are kept up to where they part from the prompt. Where another sequence
        holds a longer common prefix by COPY_GAIN tokens, its cells are copied first: llama.cpp copies a sequence's
        whole cache, a memory copy that costs less than decoding them. At least the prompt's last token is decoded,
        for the logits of the first answer token.
        """
        holding = {other.seq: other.cells() for other in live}
        holding.update((s, held) for s, held in enumerate(self._held) if s not in holding)
        own = shared_prefix(holding[seq], answer.prompt)
        source, common = max(((s, shared_prefix(held, answer.prompt)) for s, held in holding.items()),
                             key=lambda item: item[1])
        if common >= own + COPY_GAIN * llama_cpp.llama_n_ctx_seq(self._ctx) / 2048:
            llama_cpp.llama_memory_seq_cp(memory, source, seq, -1, -1)
        else:
            common = own
        common = min(common, len(answer.prompt) - 1)
        if not llama_cpp.llama_memory_seq_rm(memory, seq, common, -1):  # a cache that cannot cut a sequence short
            llama_cpp.llama_memory_seq_rm(memory, seq, -1, -1)
            common = 0
        self._held[seq] = []
        answer.seq, answer.pos, answer.pending = seq, common, answer.prompt[common:]
        live.append(answer)

    def _pack(self, live: list["_Answer"], free: list[int], memory) -> None:
        """Move the answers of the highest sequences into free lower ones, and sort the answers by sequence.

        llama.cpp decodes the sequences of a batch in one pass only where their ids follow each other (its
        cache is not unified); each gap costs a pass more, about the time of a token alone, at every step.
        Moving a sequence copies its cells once; the sequence it leaves keeps them, for a chat that shares them.
        """
        while free and live and free[0] < max(answer.seq for answer in live):
            answer, hole = max(live, key=lambda answer: answer.seq), heapq.heappop(free)
            llama_cpp.llama_memory_seq_cp(memory, answer.seq, hole, -1, -1)
            self._held[hole], self._held[answer.seq] = [], answer.cells()  # the sequence it left keeps a copy
            heapq.heappush(free, answer.seq)
            answer.seq = hole
        live.sort(key=lambda answer: answer.seq)

    def _step(self, live: list["_Answer"], abortable: bool = False) -> np.ndarray | None:
        """Decode the pending tokens of the live answers in one llama_decode; return each one's next-token logits.

        `abortable`: a step of one token per answer may end early when chats wait to join (`hurry`); llama.cpp then
        removes what it wrote to the cache, the answers are as before it, and None is returned.
        """
        abortable = abortable and all(len(answer.pending) == 1 for answer in live)
        batch, n = self._batch, 0
        for answer in live:
            for offset, token in enumerate(answer.pending):
                batch.token[n], batch.pos[n], batch.n_seq_id[n], batch.logits[n] = token, answer.pos + offset, 1, False
                batch.seq_id[n][0] = answer.seq
                n += 1
            batch.logits[n - 1] = True  # the logits of its last token only
            answer.pos += len(answer.pending)
        batch.n_tokens = n
        with self._hurry.armed(self._ctx, abortable):
            status = llama_cpp.llama_decode(self._ctx, batch)
        if status == ABORTED and abortable:
            for answer in live:
                answer.pos -= len(answer.pending)
            return None
        if status != 0:
            raise BackendError(f"llama_decode failed (status {status})")
        # One row per live answer, in batch order; llm.scores is only filled by the Llama object's own eval.
        rows = np.ctypeslib.as_array(llama_cpp.llama_get_logits(self._ctx), shape=(len(live), self._n_vocab))
        return rows.copy()  # the next decode overwrites them

    def _extend(self, answer: "_Answer", logits: np.ndarray, log_norm: float, temperature: float,
                rng: np.random.Generator | None, on_token: OnToken | None) -> None:
        """Choose the answer's next token (argmax, or sampled at `temperature`): add it, or end the answer."""
        chosen = penalise_repeats(logits, answer.tokens, self.settings.llm_repetition_penalty)
        if temperature > 0 and rng is not None:
            tempered = np.exp((chosen - chosen.max()).astype(np.float64) / temperature)
            token = int(rng.choice(len(chosen), p=tempered / tempered.sum()))
        else:
            token = int(np.argmax(chosen))
        if token in self._stop_ids or llama_cpp.llama_vocab_is_eog(self._vocab, token):
            answer.finish = "stop"
        else:
            answer.tokens.append(token)
            answer.logprobs.append(float(logits[token] - log_norm))
            answer.pending = [token]
            if on_token is not None and (piece := answer.text.decode(self.llm.detokenize([token]))):
                on_token(answer.index, piece)
            if len(answer.tokens) == answer.budget:
                answer.finish = "length"
        if answer.finish and on_token is not None and (rest := answer.text.decode(b"", final=True)):
            on_token(answer.index, rest)

    def _generation(self, answer: "_Answer") -> Generation:
        text = self.llm.detokenize(answer.tokens).decode("utf-8", "replace").strip()
        mean = float(np.mean(answer.logprobs)) if answer.logprobs else 0.0
        return Generation(text, len(answer.prompt), len(answer.tokens), mean, answer.finish)


@dataclass(eq=False)
class _Answer:
    """One chat's answer while it is decoded: its sequence in the context and its tokens so far."""

    index: int  # the chat's place in the batch: on_token's i
    prompt: list[int]
    budget: int  # the most tokens it may have: max_new_tokens, or what the context leaves
    seq: int = -1  # its sequence id in the context, once started
    pos: int = 0  # how many of its tokens the context holds
    pending: list[int] = field(default_factory=list)  # what the next step decodes: the prompt, then the last token
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish: str | None = None  # "stop" or "length" once it ended
    # A token may end inside a UTF-8 character: the decoder holds such bytes until the next one.
    text: codecs.IncrementalDecoder = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))

    def cells(self) -> list[int]:
        """The tokens its sequence holds cells of: the prompt and the answer so far, less what is still pending."""
        return (self.prompt + self.tokens)[:self.pos]


class Hurry:
    """A flag that ends a llama.cpp decode early: llama.cpp asks its abort callback between two nodes of the graph,
    and stops the decode (status 2, what it wrote to the cache removed) when it answers true.

    The callback is libc's strlen over a two-byte buffer [flag, 0]: C, so a decode pays nothing for the check (a
    Python callback would run at each of the graph's ~1,000 nodes), and its result, 1 while the flag is set, is a
    true bool. Any thread may set the flag; the decoding thread clears it.
    """

    def __init__(self):
        self._flag = ctypes.create_string_buffer(2)
        self._never = ctypes.create_string_buffer(2)  # read by decodes that must not end early
        strlen = ctypes.cast(ctypes.CDLL(None).strlen, ctypes.c_void_p).value
        self.callback = llama_cpp.ggml_abort_callback(strlen)

    def set(self) -> None:
        self._flag[0] = 1

    def clear(self) -> None:
        self._flag[0] = 0

    @contextmanager
    def armed(self, ctx, abortable: bool):
        """Let the flag end the decode made inside, if `abortable`. llama.cpp logs the cells it removes after an
        early end as a warning (at its own ERROR level, through llama-cpp-python): expected here, so not shown."""
        if not abortable:
            llama_cpp.llama_set_abort_callback(ctx, self.callback, ctypes.cast(self._never, ctypes.c_void_p))
            yield
            return
        logger = logging.getLogger("llama-cpp-python")
        level = logger.level
        logger.setLevel(logging.CRITICAL)
        llama_cpp.llama_set_abort_callback(ctx, self.callback, ctypes.cast(self._flag, ctypes.c_void_p))
        try:
            yield
        finally:
            logger.setLevel(level)


def prompts_first(live: list[_Answer]) -> list[list[_Answer]]:
    """The decodes of one step: the prompts of chats that start beside answers under way go first, on their own, so
    that a chat joining a running batch has its first token after its own prompt, not after a step of the batch
    too (the whole step of 8 sequences is about the time of a short prompt alone on a CPU)."""
    starting = [answer for answer in live if answer.pos < len(answer.prompt)]
    if not starting or len(starting) == len(live):
        return [live]
    return [starting, [answer for answer in live if answer.pos >= len(answer.prompt)]]


def shared_prefix(held: list[int], prompt: list[int]) -> int:
    """How many tokens `held` and `prompt` have in common from the start."""
    n = min(len(held), len(prompt))
    differs = np.asarray(held[:n]) != np.asarray(prompt[:n])
    return int(differs.argmax()) if differs.any() else n


def penalise_repeats(logits: np.ndarray, tokens, penalty: float) -> np.ndarray:
    """Return the logits with those of `tokens` divided by `penalty` (multiplied when negative): Transformers' rule."""
    if penalty == 1.0 or not len(tokens):
        return logits
    seen = np.unique(np.asarray(tokens, dtype=np.int64))
    out = logits.copy()
    out[seen] = np.where(out[seen] > 0, out[seen] / penalty, out[seen] * penalty)
    return out
