"""The transformers backend on a tiny random Llama built here, and on the SmolLM2 GGUF."""

import importlib.util
import math
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from precache.config import load_settings
from worker.backends import BackendError
from worker.backends.models import resolve_model
from worker.backends.transformers import TransformersBackend, quantization_config
from worker.quality import repetition_penalty

pytestmark = pytest.mark.model

CHATS = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "How do I reset my password if I no longer have access to my email?"}],
    [
        {"role": "system", "content": "You are a support assistant."},
        {"role": "user", "content": "Where is my order?"},
    ],
]


def make_backend(model: str, **overrides) -> TransformersBackend:
    overrides = {"llm_device": "cpu", **overrides}
    return TransformersBackend(load_settings(llm_backend="transformers", llm_model=model, **overrides))


def generate_once(backend: TransformersBackend, chats, max_new_tokens: int):
    backend.load()
    try:
        return backend.generate(chats, max_new_tokens)
    finally:
        backend.close()


@pytest.fixture(scope="module")
def tokenizer():
    smollm2 = resolve_model("smollm2")
    return AutoTokenizer.from_pretrained(smollm2.path_or_id, gguf_file=smollm2.gguf_file)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tokenizer):
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.2,  # peaked logits: no near-ties for padding round-off to flip
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    backend = make_backend(str(tiny_model_dir))
    backend.load()
    return backend


def test_batch_gives_one_bounded_answer_per_chat(tiny):
    answers = tiny.generate(CHATS, max_new_tokens=6)
    assert len(answers) == 3
    assert len({a.prompt_tokens for a in answers}) == 3  # the chats really have different lengths
    for answer in answers:
        assert answer.prompt_tokens > 0
        assert answer.completion_tokens <= 6
        assert math.isfinite(answer.mean_logprob) and answer.mean_logprob <= 0
        assert answer.finish_reason in {"stop", "length"}


def test_sampling_is_seeded_and_greedy_stays_greedy(tiny):
    greedy = tiny.generate(CHATS, max_new_tokens=6)
    first = tiny.generate(CHATS, max_new_tokens=6, temperature=1.5, seed=7)
    assert tiny.generate(CHATS, max_new_tokens=6, temperature=1.5, seed=7) == first  # the same seed, the same answers
    assert [a.text for a in first] != [a.text for a in greedy]  # a random tiny model: sampling leaves argmax
    assert tiny.generate(CHATS, max_new_tokens=6) == greedy


def test_left_padded_batch_gives_the_same_greedy_answers_as_one_by_one(tiny):
    batched = tiny.generate(CHATS, max_new_tokens=6)
    for chat, in_batch in zip(CHATS, batched):
        [alone] = tiny.generate([chat], max_new_tokens=6)
        assert (in_batch.text, in_batch.completion_tokens, in_batch.prompt_tokens) == (
            alone.text,
            alone.completion_tokens,
            alone.prompt_tokens,
        )
        assert in_batch.mean_logprob == pytest.approx(alone.mean_logprob, abs=1e-4)


def test_smollm2_gguf_answers_a_question():
    backend = make_backend("smollm2")
    backend.load()
    [answer] = backend.generate([[{"role": "user", "content": "What is the capital of France?"}]], 12)
    assert "Paris" in answer.text
    assert answer.finish_reason == "stop"
    assert math.isfinite(answer.mean_logprob) and answer.mean_logprob < 0


def test_repetition_penalty_breaks_a_loop_in_the_answer():
    yes = [[{"role": "user", "content": "Write the word yes fifty times."}]]
    [looping] = generate_once(make_backend("smollm2", llm_repetition_penalty=1.0), yes, 40)
    assert repetition_penalty(looping.text) < 0.5, looping.text  # greedy SmolLM2 says "yes, yes, yes, ..."
    [answer] = generate_once(make_backend("smollm2"), yes, 40)  # the default, 1.1
    assert repetition_penalty(answer.text) == 1.0, answer.text
    assert "yes" in answer.text.lower()  # the prompt's own words are not penalised
    assert math.isfinite(answer.mean_logprob) and answer.mean_logprob < 0


def test_missing_gguf_names_the_path(tmp_path):
    with pytest.raises(BackendError, match="missing.gguf"):
        make_backend(str(tmp_path / "missing.gguf")).load()


@pytest.fixture(scope="module")
def smollm2_folder(tmp_path_factory, tokenizer):
    """SmolLM2 saved as a plain bf16 model folder (bitsandbytes cannot quantize a GGUF file)."""
    smollm2 = resolve_model("smollm2")
    dequantized = AutoModelForCausalLM.from_pretrained(smollm2.path_or_id, gguf_file=smollm2.gguf_file)
    config = LlamaConfig.from_dict({k: v for k, v in dequantized.config.to_dict().items() if k != "quantization_config"})
    plain = LlamaForCausalLM(config)
    plain.load_state_dict(dequantized.state_dict())
    folder = tmp_path_factory.mktemp("smollm2-bf16")
    plain.to(torch.bfloat16).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.filterwarnings("ignore:MatMul8bitLt")  # bitsandbytes casts fp32 activations to fp16 for int8
@pytest.mark.parametrize("mode, most_bytes_per_weight", [("8bit", 2.0), ("4bit", 1.5)])
def test_quantized_smollm2_answers_correctly_on_cpu(smollm2_folder, mode, most_bytes_per_weight):
    backend = make_backend(str(smollm2_folder), llm_quantization=mode, llm_bnb_compute_dtype="fp32")
    backend.load()
    [answer] = backend.generate([[{"role": "user", "content": "What is the capital of France?"}]], 12)
    assert "Paris" in answer.text
    assert math.isfinite(answer.mean_logprob) and answer.mean_logprob < 0
    weights = sum(p.numel() for p in backend.model.parameters())
    # Embeddings stay in full precision, so the footprint is above the 1 or 0.5 bytes of the quantized layers.
    assert backend.model.get_memory_footprint() < most_bytes_per_weight * weights * 2


def test_quantization_config_follows_the_settings():
    config = quantization_config(load_settings(llm_quantization="4bit", llm_bnb_4bit_quant_type="fp4",
                                               llm_bnb_compute_dtype="bf16"))
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "fp4"
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    assert quantization_config(load_settings(llm_quantization="8bit")).load_in_8bit
    assert quantization_config(load_settings(llm_quantization="none")) is None


def test_quantizing_a_gguf_says_which_setting_to_change():
    with pytest.raises(BackendError, match="set PRECACHE_LLM_QUANTIZATION=none, or PRECACHE_LLM_MODEL"):
        make_backend("smollm2", llm_quantization="4bit").load()


def test_quantization_without_bitsandbytes_says_what_to_install(tiny_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as if it were not installed
    with pytest.raises(BackendError, match=r"PRECACHE_LLM_QUANTIZATION=8bit needs bitsandbytes: pip install"):
        make_backend(str(tiny_model_dir), llm_quantization="8bit").load()


@pytest.mark.parametrize("dtype, expected", [("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_half_precision_loads_and_answers_on_cpu(tiny_model_dir, dtype, expected):
    backend = make_backend(str(tiny_model_dir), llm_dtype=dtype)
    backend.load()
    assert backend.model.dtype == expected
    answers = backend.generate(CHATS, max_new_tokens=4)
    assert len(answers) == 3 and all(math.isfinite(a.mean_logprob) for a in answers)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_attention_implementations_give_the_same_greedy_answers(tiny, tiny_model_dir, attention):
    backend = make_backend(str(tiny_model_dir), llm_attention=attention)
    backend.load()
    assert backend.model.config._attn_implementation == attention
    expected = tiny.generate(CHATS, max_new_tokens=6)
    assert [a.text for a in backend.generate(CHATS, max_new_tokens=6)] == [a.text for a in expected]


@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is not None, reason="needs a machine without flash-attn")
def test_flash_attention_without_the_package_says_what_to_change(tiny_model_dir):
    with pytest.raises(BackendError, match="PRECACHE_LLM_ATTENTION=flash_attention_2 needs the flash-attn package"):
        make_backend(str(tiny_model_dir), llm_attention="flash_attention_2").load()


def test_tokenizer_without_chat_template_is_refused(tmp_path, tiny_model_dir):
    plain = AutoTokenizer.from_pretrained(tiny_model_dir)
    plain.chat_template = None
    plain.save_pretrained(tmp_path)
    with pytest.raises(BackendError, match="no chat template"):
        make_backend(str(tmp_path)).load()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_a_gpu_says_which_setting_to_change(tiny_model_dir):
    with pytest.raises(BackendError, match="PRECACHE_LLM_DEVICE=cuda"):
        make_backend(str(tiny_model_dir), llm_device="cuda").load()


def test_on_token_streams_every_row_of_a_padded_batch_as_it_is_generated(tiny):
    pieces: dict[int, list[str]] = {i: [] for i in range(len(CHATS))}
    answers = tiny.generate(CHATS, max_new_tokens=6, on_token=lambda i, text: pieces[i].append(text))
    for i, answer in enumerate(answers):
        if answer.completion_tokens > 1:
            assert len(pieces[i]) >= 2, pieces  # token by token, not the answer whole at the end
        assert "".join(pieces[i]).strip() == answer.text, (pieces[i], answer.text)
    assert tiny.generate(CHATS, max_new_tokens=6) == answers  # streaming changes no answer
