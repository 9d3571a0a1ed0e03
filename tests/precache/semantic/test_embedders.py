"""The question embedder loads the packaged all-MiniLM-L6-v2 offline and encodes normalised vectors."""

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub here: the model must come from the package

from precache.semantic.embedders import Embedder, resolve_model, shared_embedder

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def embedder():
    return Embedder()


def test_default_model_is_the_packaged_folder():
    assert os.path.isfile(os.path.join(resolve_model("all-MiniLM-L6-v2"), "modules.json"))
    assert resolve_model("some/hub-id") == "some/hub-id"


def test_encode_returns_normalised_float32_rows(embedder):
    vectors = embedder.encode(["How do I reset my password?", "What is the capital of France?"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)


def test_paraphrases_are_closer_than_unrelated_questions(embedder):
    a, b, c = embedder.encode(["How do I reset my password?", "I forgot my password, how can I change it?",
                               "What is the capital of France?"])
    assert a @ b > a @ c + 0.3


def test_one_embedder_per_process():
    assert shared_embedder() is shared_embedder()


def test_an_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown embedding backend"):
        Embedder(backend="tensorrt")
