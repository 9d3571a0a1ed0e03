import pytest

from web.intents import TemplateFileError, load_intents


def test_the_builtin_templates_load():
    assert any(intent.name for intent in load_intents())


def test_a_python_object_tag_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "yaml-ran"
    path = tmp_path / "templates.yaml"
    path.write_text(f'intents: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(TemplateFileError, match=r"templates\.yaml.*python/object/apply:os\.system"):
        load_intents(path)
    assert not marker.exists()


def test_a_malformed_file_names_itself(tmp_path):
    path = tmp_path / "templates.yaml"
    path.write_text("intents:\n  - name: x\n")  # no patterns, no answer
    with pytest.raises(TemplateFileError, match="templates.yaml"):
        load_intents(path)
