"""Transformers backend: a Hugging Face causal LM in PyTorch, on CPU or CUDA, optionally quantized."""

import importlib.util

import torch
from transformers import (AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, LogitsProcessorList,
                          RepetitionPenaltyLogitsProcessor, StoppingCriteriaList)

from worker.backends.base import Backend, BackendError, Generation, GenerationStopped, Message, OnToken, one_line
from worker.backends.models import ResolvedModel, resolve_model
from worker.backends.transformers_hooks import BatchStreamer, WhenSet

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def quantization_config(settings) -> BitsAndBytesConfig | None:
    """Return the bitsandbytes config of PRECACHE_LLM_QUANTIZATION (None for none)."""
    if settings.llm_quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    if settings.llm_quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=settings.llm_bnb_4bit_quant_type,
            bnb_4bit_compute_dtype=DTYPES[settings.llm_bnb_compute_dtype],
        )
    return None


class TransformersBackend(Backend):
    """Generate with a Transformers causal LM: each batch is one left-padded `generate` call (greedy by default).

    The end-of-turn token ends an answer but is not counted in it; mean_logprob is the mean
    log-softmax of the answer's tokens.
    """

    name = "transformers"

    def load(self) -> None:
        """Check the settings fit this machine, then load the tokenizer and the model onto the device."""
        self.device = self._device()
        self.dtype = self._dtype()
        quantization = self._quantization_config()
        self.attention = self._attention()
        model = resolve_model(self.settings.llm_model)
        self._check_gguf(model, quantization)
        try:
            self._load_weights(model, quantization)
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f"cannot load model {_where(model)}: {one_line(exc)}") from exc
        self.model.eval()
        self._eos_ids = self._end_token_ids()

    def _check_gguf(self, model: ResolvedModel, quantization: BitsAndBytesConfig | None) -> None:
        if quantization is not None and model.gguf_file:
            raise BackendError(
                f"PRECACHE_LLM_QUANTIZATION={self.settings.llm_quantization} cannot apply to a GGUF model "
                f"({_where(model)}; transformers dequantizes GGUF files): set PRECACHE_LLM_QUANTIZATION=none, or "
                "PRECACHE_LLM_MODEL to a model folder or hub id"
            )

    def _load_weights(self, model: ResolvedModel, quantization: BitsAndBytesConfig | None) -> None:
        source = {"gguf_file": model.gguf_file} if model.gguf_file else {}
        self.tokenizer = AutoTokenizer.from_pretrained(model.path_or_id, **source)
        self._prepare_tokenizer(model)
        self.model = AutoModelForCausalLM.from_pretrained(
            model.path_or_id,
            dtype=self.dtype,
            quantization_config=quantization,
            attn_implementation=self.attention,
            # bitsandbytes places the weights itself while loading; a quantized model cannot be moved after.
            device_map={"": str(self.device)} if quantization else None,
            **source,
        )
        if quantization is None:
            self.model.to(self.device)

    def generate(self, chats: list[list[Message]], max_new_tokens: int, temperature: float = 0.0,
                 seed: int = 0, on_token: OnToken | None = None, stop=None) -> list[Generation]:
        """Answer all chats in one left-padded batch (greedy, or sampled at `temperature` from `seed`)."""
        batch = self._encode(chats)
        prompt_length = batch["input_ids"].shape[1]
        with torch.inference_mode():
            out = self.model.generate(
                **batch,
                **_sampling(temperature, seed),
                max_new_tokens=max_new_tokens,
                logits_processor=self._processors(prompt_length),
                output_logits=True,
                return_dict_in_generate=True,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=sorted(self._eos_ids),
                streamer=BatchStreamer(self.tokenizer, self._eos_ids, on_token, len(chats)) if on_token else None,
                stopping_criteria=StoppingCriteriaList([WhenSet(stop)]) if stop is not None else None,
            )
            if stop is not None and stop.is_set():
                raise GenerationStopped("stopped between two tokens, as asked")
            # Under the model's own logits (untempered, unpenalised), as the llama_cpp backend reports them.
            logprobs = self.model.compute_transition_scores(out.sequences, out.logits, normalize_logits=True)
        new_tokens = out.sequences[:, prompt_length:].tolist()
        prompt_lengths = batch["attention_mask"].sum(dim=1).tolist()
        return [self._result(*row) for row in zip(new_tokens, logprobs.float().cpu(), prompt_lengths, strict=True)]

    def _encode(self, chats: list[list[Message]]):
        """Tokenize the chats' prompts as one left-padded batch on the device."""
        template = self.tokenizer.apply_chat_template
        prompts = [template(chat, add_generation_prompt=True, tokenize=False) for chat in chats]
        # The chat template already writes the special tokens the model expects.
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        return batch.to(self.device)

    def _processors(self, prompt_length: int) -> LogitsProcessorList:
        processors = LogitsProcessorList()
        penalty = self.settings.llm_repetition_penalty
        if penalty != 1.0:  # on the answer's tokens only: the prompt (left-padded to one length) is left alone
            processors.append(RepetitionPenaltyLogitsProcessor(penalty, prompt_ignore_length=prompt_length))
        return processors

    def _result(self, tokens: list[int], logprobs: torch.Tensor, prompt_tokens: int) -> Generation:
        # Rows that end early are filled with padding, which may be the EOS token itself.
        end = next((i for i, token in enumerate(tokens) if token in self._eos_ids), None)
        n = len(tokens) if end is None else end
        text = self.tokenizer.decode(tokens[:n], skip_special_tokens=True).strip()
        mean = float(logprobs[:n].mean()) if n else 0.0
        return Generation(text, int(prompt_tokens), n, mean, "length" if end is None else "stop")

    def _device(self) -> torch.device:
        name = self.settings.llm_device
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            device = torch.device(name)
        except RuntimeError:
            raise BackendError(f"PRECACHE_LLM_DEVICE={name} is not a torch device; use auto, cpu or cuda") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BackendError(f"PRECACHE_LLM_DEVICE={name} but no CUDA GPU is available; use auto or cpu")
        return device

    def _dtype(self) -> torch.dtype:
        name = self.settings.llm_dtype
        if name == "auto":
            name = "fp16" if self.device.type == "cuda" else "fp32"
        dtype = DTYPES[name]
        if self.device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            raise BackendError("PRECACHE_LLM_DTYPE=bf16 but this GPU has no bfloat16; use fp16")
        try:  # the operations generation needs, in this dtype on this device
            probe = torch.ones(4, 4, dtype=dtype, device=self.device)
            torch.softmax(probe @ probe, dim=-1).sum().item()
        except RuntimeError as exc:
            raise BackendError(f"PRECACHE_LLM_DTYPE={name} does not work on {self.device} ({one_line(exc)}); use fp32") from None
        return dtype

    def _quantization_config(self) -> BitsAndBytesConfig | None:
        mode = self.settings.llm_quantization
        if mode == "none":
            return None
        if importlib.util.find_spec("bitsandbytes") is None:
            raise BackendError(
                f"PRECACHE_LLM_QUANTIZATION={mode} needs bitsandbytes: pip install 'precache[gpu]', "
                "or set PRECACHE_LLM_QUANTIZATION=none"
            )
        try:
            self._probe_bitsandbytes(mode)
        except Exception as exc:
            raise BackendError(
                f"PRECACHE_LLM_QUANTIZATION={mode}: bitsandbytes cannot run it on {self.device} here "
                f"({one_line(exc)}); set PRECACHE_LLM_QUANTIZATION=none, or run on a CUDA GPU (PRECACHE_LLM_DEVICE=cuda)"
            ) from None
        return quantization_config(self.settings)

    def _probe_bitsandbytes(self, mode: str) -> None:
        """Quantize one small layer and run it on the device: bitsandbytes builds without this device's kernels fail here."""
        import bitsandbytes as bnb

        compute = DTYPES[self.settings.llm_bnb_compute_dtype] if mode == "4bit" else torch.float16
        if mode == "8bit":
            layer = bnb.nn.Linear8bitLt(64, 64, bias=False, has_fp16_weights=False)
        else:
            layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=compute,
                                      quant_type=self.settings.llm_bnb_4bit_quant_type)
        with torch.inference_mode():
            layer.to(self.device)(torch.ones(2, 64, dtype=compute, device=self.device)).sum().item()

    def _attention(self) -> str | None:
        name = self.settings.llm_attention
        if name != "flash_attention_2":
            return None if name == "auto" else name
        if importlib.util.find_spec("flash_attn") is None:
            raise BackendError(
                "PRECACHE_LLM_ATTENTION=flash_attention_2 needs the flash-attn package (pip install flash-attn); "
                "use sdpa"
            )
        if self.device.type != "cuda" or self.dtype == torch.float32:
            raise BackendError(
                f"PRECACHE_LLM_ATTENTION=flash_attention_2 runs on CUDA in fp16 or bf16, not on {self.device} in "
                f"{self.dtype}; use sdpa, or PRECACHE_LLM_DTYPE=fp16 on a GPU"
            )
        return name

    def _prepare_tokenizer(self, model: ResolvedModel) -> None:
        if not self.tokenizer.chat_template:
            raise BackendError(f"model {_where(model)} has no chat template; use an instruct/chat model")
        self.tokenizer.padding_side = "left"  # decoder-only models continue from the right end
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def _end_token_ids(self) -> set[int]:
        configured = self.model.generation_config.eos_token_id
        ids = set(configured if isinstance(configured, list) else [configured])
        ids.add(self.tokenizer.eos_token_id)
        return {i for i in ids if i is not None}


def _sampling(temperature: float, seed: int) -> dict:
    """Greedy at temperature 0; else sample from the whole distribution, seeded."""
    if temperature <= 0:
        return {"do_sample": False}
    torch.manual_seed(seed)
    return {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}


def _where(model: ResolvedModel) -> str:
    return str(model.gguf_path or model.path_or_id)
