"""The ONNX export of the question embedder (precache/semantic/onnx.py): the torch vectors, built once, cached,
and left on torch for a model the exporter cannot handle."""

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub here: the model must come from the package

from precache.semantic.embedders import Embedder, resolve_model  # noqa: E402
from tests.precache.semantic.test_embedders import embedder  # noqa: E402,F401 - fixture shared with test_embedders

pytestmark = pytest.mark.model


QUESTIONS = ["How do I reset my password?", "hi", "Why was my card declined at a shop in Madrid yesterday?"]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


@pytest.mark.parametrize(("backend", "least_cosine"), [("onnx", 0.99999), ("onnx-int8", 0.97)])
def test_onnx_backends_give_the_torch_vectors(embedder, onnx_cache, backend, least_cosine):
    onnx = Embedder(backend=backend, cache_dir=onnx_cache)
    vectors = onnx.encode(QUESTIONS)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32 and onnx.dim == 384
    cosines = (vectors * embedder.encode(QUESTIONS)).sum(axis=1)
    assert cosines.min() >= least_cosine
    np.testing.assert_allclose(onnx.encode(QUESTIONS[:1])[0], vectors[0], atol=1e-5)  # alone or in a batch


def test_the_onnx_export_is_built_once_and_reused(onnx_cache):
    Embedder(backend="onnx", cache_dir=onnx_cache).encode(["warm up"])
    (folder,) = [p for p in onnx_cache.iterdir() if p.is_dir()]
    built = (folder / "model.onnx").stat().st_mtime_ns
    Embedder(backend="onnx", cache_dir=onnx_cache).encode(["another process"])
    assert (folder / "model.onnx").stat().st_mtime_ns == built
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_model_the_exporter_cannot_handle_stays_on_torch(tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2"), folder)
    (folder / "tokenizer.json").unlink()  # the ONNX path needs a fast tokenizer file
    fallback = Embedder(str(folder), backend="onnx", cache_dir=tmp_path / "onnx")
    assert fallback.encode(QUESTIONS[:1]).shape == (1, 384)
    assert not hasattr(fallback.model, "session") and not (tmp_path / "onnx").exists()


def test_a_model_without_segment_ids_is_exported_and_encoded(tmp_path):
    """MPNet, DistilBERT and the like take no token_type_ids: the export and the encoder leave them out."""
    import json
    import shutil

    import torch
    from transformers import DistilBertConfig, DistilBertModel

    folder, packaged = tmp_path / "tiny-distilbert", resolve_model("all-MiniLM-L6-v2")
    torch.manual_seed(0)
    DistilBertModel(DistilBertConfig(vocab_size=30522, dim=32, hidden_dim=64, n_layers=2, n_heads=2)).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "modules.json",
                 "sentence_bert_config.json"):
        shutil.copy(os.path.join(packaged, name), folder / name)  # MiniLM's: Transformer, mean Pooling, Normalize
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True}))
    torch_vectors = Embedder(str(folder)).encode(QUESTIONS)
    onnx = Embedder(str(folder), backend="onnx", cache_dir=tmp_path / "onnx")
    vectors = onnx.encode(QUESTIONS)
    assert hasattr(onnx.model, "session") and "token_type_ids" not in onnx.model.inputs
    assert vectors.shape == (3, 32)
    assert (vectors * torch_vectors).sum(axis=1).min() >= 0.99999
