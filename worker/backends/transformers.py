"""Transformers backend: a Hugging Face causal LM in PyTorch, on CPU or CUDA, optionally quantized."""

import importlib.util

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from worker.backends.base import Backend, BackendError, Generation, Message
from worker.backends.models import ResolvedModel, resolve_model

QUANTIZATION = {
    "8bit": {"load_in_8bit": True},
    "4bit": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": torch.float16},
}


class TransformersBackend(Backend):
    """Generate with a Transformers causal LM: each batch is one left-padded greedy `generate` call.

    The end-of-turn token ends an answer but is not counted in it; mean_logprob is the mean
    log-softmax of the answer's tokens.
    """

    name = "transformers"

    def load(self) -> None:
        """Load the tokenizer and the model onto the configured device."""
        self.device = self._device()
        quantization = self._quantization_config()
        model = resolve_model(self.settings.llm_model)
        try:
            self._load_weights(model, quantization)
        except BackendError:
            raise
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BackendError(f"cannot load model {_where(model)}: {reason}") from exc
        self.model.eval()
        self._eos_ids = self._end_token_ids()

    def _load_weights(self, model: ResolvedModel, quantization: BitsAndBytesConfig | None) -> None:
        source = {"gguf_file": model.gguf_file} if model.gguf_file else {}
        self.tokenizer = AutoTokenizer.from_pretrained(model.path_or_id, **source)
        self._prepare_tokenizer(model)
        self.model = AutoModelForCausalLM.from_pretrained(
            model.path_or_id,
            dtype=torch.float16 if self.device.type == "cuda" else torch.float32,
            quantization_config=quantization,
            # bitsandbytes places the weights itself while loading; a quantized model cannot be moved after.
            device_map={"": str(self.device)} if quantization else None,
            **source,
        )
        if quantization is None:
            self.model.to(self.device)

    def generate(self, chats: list[list[Message]], max_new_tokens: int) -> list[Generation]:
        """Answer all chats in one left-padded batch."""
        template = self.tokenizer.apply_chat_template
        prompts = [template(chat, add_generation_prompt=True, tokenize=False) for chat in chats]
        # The chat template already writes the special tokens the model expects.
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        batch = batch.to(self.device)
        with torch.inference_mode():
            out = self.model.generate(
                **batch,
                do_sample=False,
                max_new_tokens=max_new_tokens,
                output_scores=True,
                return_dict_in_generate=True,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=sorted(self._eos_ids),
            )
            logprobs = self.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
        new_tokens = out.sequences[:, batch["input_ids"].shape[1] :].tolist()
        prompt_lengths = batch["attention_mask"].sum(dim=1).tolist()
        return [self._result(*row) for row in zip(new_tokens, logprobs.float().cpu(), prompt_lengths, strict=True)]

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

    def _quantization_config(self) -> BitsAndBytesConfig | None:
        mode = self.settings.llm_quantization
        if mode == "none":
            return None
        if self.device.type != "cuda" or importlib.util.find_spec("bitsandbytes") is None:
            raise BackendError(
                f"PRECACHE_LLM_QUANTIZATION={mode} needs a CUDA GPU and bitsandbytes "
                "(pip install 'precache[gpu]'); set it to none on CPU"
            )
        return BitsAndBytesConfig(**QUANTIZATION[mode])

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


def _where(model: ResolvedModel) -> str:
    return str(model.gguf_path or model.path_or_id)
