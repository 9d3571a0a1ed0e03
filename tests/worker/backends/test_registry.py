"""The backend registry and the LLM_BACKEND setting: one table, so a name the setting accepts always loads."""

import pytest

from precache.config import load_settings
from precache.config.generation import BACKENDS
from worker.backends import Backend, BackendError, backend_class


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_registered_backend_is_accepted_by_the_setting_and_loads_its_class(name):
    assert load_settings(llm_backend=name).llm_backend == name
    cls = backend_class(name)
    assert issubclass(cls, Backend) and cls.name == name


def test_a_name_outside_the_registry_is_refused_by_the_setting_naming_it():
    with pytest.raises(ValueError, match="PRECACHE_LLM_BACKEND.*'llama'"):
        load_settings(llm_backend="llama")


def test_a_class_path_of_ones_own_is_accepted_and_a_missing_one_named_when_loaded():
    assert load_settings(llm_backend="my_backends:Mine").llm_backend == "my_backends:Mine"
    with pytest.raises(BackendError, match="cannot load backend 'my_backends:Mine'"):
        backend_class("my_backends:Mine")
