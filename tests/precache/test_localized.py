"""What an asker gets in their own language without the model: the fallback, the templates, the honest answer."""

import pytest

from precache.config import Settings
from precache.localized import LanguageFileError, fallback_for, generates, korean_file, no_model_answer
from web.intents import korean_file_intents, match_intent


def test_the_fallback_is_in_the_askers_language():
    settings = Settings()
    assert fallback_for(settings, "배송은 얼마나 걸리나요?") == korean_file()["fallback_answer"]
    assert fallback_for(settings, "How long does shipping take?") == settings.fallback_answer
    assert fallback_for(settings, None) == settings.fallback_answer


def test_the_model_answers_only_in_its_languages():
    assert generates(Settings(), "en")
    assert not generates(Settings(), "ko")
    assert generates(Settings(llm_languages="en, ko"), "ko")


def test_a_korean_file_of_your_own_is_used(tmp_path):
    path = tmp_path / "ko.yaml"
    path.write_text('fallback_answer: "잠시만요."\nno_model_answer: "담당자가 답변합니다."\nintents:\n'
                    '  - name: hours\n    patterns: ["영업시간(알려줘|알려주세요)?"]\n    answer: "9시부터 6시까지입니다."\n',
                    encoding="utf-8")
    settings = Settings(korean_file=path)
    assert fallback_for(settings, "배송은?") == "잠시만요." and no_model_answer(settings) == "담당자가 답변합니다."
    assert match_intent(korean_file_intents(path), "영업시간알려주세요").answer == "9시부터 6시까지입니다."


@pytest.mark.parametrize("content", ["fallback_answer: 잠시만요.\n", "[1, 2]\n", 'fallback_answer: ""\nno_model_answer: x\n'])
def test_a_broken_korean_file_is_named_with_what_is_wrong(tmp_path, content):
    path = tmp_path / "broken.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LanguageFileError, match="broken.yaml"):
        korean_file(path)
