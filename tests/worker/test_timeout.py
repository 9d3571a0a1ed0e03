"""Generation within a time limit (worker/timeout.py): a real generation stops between two tokens."""

import pytest

from tests.worker.test_generation import smollm2  # noqa: F401 - fixture shared with test_generation

pytestmark = pytest.mark.model


def test_a_real_generation_asked_to_stop_stops_between_two_tokens_and_the_model_goes_on(smollm2):
    import threading

    from worker.backends import GenerationStopped, GenerationTimeout
    from worker.timeout import generate_within

    chat = [{"role": "user", "content": "Write a long story about a dragon."}]
    stop, pieces = threading.Event(), []

    def on_token(i, text):
        pieces.append(text)
        if len(pieces) == 3:
            stop.set()  # asked mid-generation, from another thread's point of view as generate_within does

    with pytest.raises(GenerationStopped):
        smollm2.generate([chat], 200, on_token=on_token, stop=stop)
    assert len(pieces) == 3  # not one token more
    with pytest.raises(GenerationTimeout) as timed_out:  # a tiny time limit: stopped cleanly, not stuck
        generate_within(smollm2, [chat], 2000, 1.0)
    assert timed_out.type is GenerationTimeout
    assert not [t for t in threading.enumerate() if t.name == "generation" and t.is_alive()]
    [again] = smollm2.generate([[{"role": "user", "content": "What is the capital of France?"}]], 16)
    assert "Paris" in again.text  # the same model answers as before
