"""The Korean guards: near misses of every kind are vetoed, with particles attached; paraphrases pass."""

import csv
import json
from pathlib import Path

import pytest

from precache.semantic.guards import compatible
from precache.semantic.korean import details, strip_particle, veto

ROOT = Path(__file__).resolve().parents[3]
NEAR_MISSES = ROOT / "bench" / "data" / "korean_near_misses.tsv"
STYLEKQC = ROOT.parent / "shared" / "data" / "korean" / "stylekqc_groups_train_dev.jsonl"


@pytest.mark.parametrize(
    ("guard", "question", "near_miss", "paraphrase"),
    [
        ("opposite", "거실 불 켜 줘", "거실 불 꺼 줘", "거실 조명 좀 켜주세요"),
        ("opposite", "멤버십 신청은 어디서 하나요?", "멤버십 해지는 어디서 하나요?", "멤버십 가입 신청 어디서 해요?"),
        ("opposite", "볼륨 좀 올려 주세요", "볼륨 좀 내려 주세요", "소리 좀 올려줘"),
        ("negation", "주말에도 배송되나요?", "주말에는 배송 안 되나요?", "주말에도 배송해 주시나요?"),
        ("negation", "현금 말고 카드로 결제할게요", "카드 말고 현금으로 결제할게요", "현금 말고 카드로 계산할게요"),
        ("place", "서울에 매장이 있나요?", "부산에 매장이 있나요?", "서울에는 매장 있어요?"),
        ("place", "서울의 날씨는 어때?", "부산의 날씨는 어때?", "오늘 서울 날씨 어때?"),
        ("date", "일요일에도 영업하나요?", "토요일에도 영업하나요?", "일요일에 문 여나요?"),
        ("number", "두 개 사면 할인되나요?", "세 개 사면 할인되나요?", "두개 사면 할인 돼요?"),
        ("number", "삼만원 이상 무료배송인가요?", "오만원 이상 무료배송인가요?", "3만원 넘으면 배송비 무료예요?"),
        ("object", "안드로이드에서 앱 업데이트 방법", "아이폰에서 앱 업데이트 방법", "안드로이드폰 앱 업데이트 어떻게 해요"),
        ("object", "인증번호를 문자로 받고 싶어요", "인증번호를 이메일로 받고 싶어요", "인증번호 문자로 받을래요"),
    ],
)
def test_korean_guard_vetoes_a_near_miss_and_passes_a_paraphrase(guard, question, near_miss, paraphrase):
    assert compatible(question, near_miss) == guard
    assert compatible(paraphrase, question) is None


def test_particles_come_off_known_words():
    assert strip_particle("서울에서") == strip_particle("서울은") == strip_particle("서울의") == "서울"
    assert details("서울에서는 영업하나요").places == details("서울의 영업시간").places == {"서울"}
    assert details("아이폰으로 보내줘").objects == {("device", "아이폰")}


def test_words_that_only_look_like_negation_are_not_negation():
    assert not details("안내 데스크는 어디인가요?").negated  # 안내 is guidance
    assert not details("안드로이드 앱이 있나요?").negated
    assert details("결제가 안 돼요").negated and details("결제하지 마세요").negated and details("피해 주세요").negated


def test_a_choice_between_both_sides_is_not_one_side():
    assert details("창문을 열어야 하나요 닫아야 하나요").actions == frozenset()
    assert details("구독 취소하고 싶어요").actions == {("subscribe", 1)}  # cancelling the subscription


def test_hand_written_near_misses_are_all_vetoed():
    with NEAR_MISSES.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == 30
    passed = [r for r in rows if compatible(r["asked"], r["cached"]) is None]
    assert passed == []


def test_paraphrases_in_style_groups_are_rarely_vetoed():
    """Polite and casual wordings of one request (StyleKQC): the guards veto at most 2 % of the pairs."""
    if not STYLEKQC.exists():
        pytest.skip("../shared/data/korean is not beside the repository")
    rows = [json.loads(line) for line in STYLEKQC.read_text(encoding="utf-8").splitlines()][:600]
    pairs = [(r["formal"][0], other) for r in rows for other in r["formal"][1:] + r["informal"]]
    vetoed = [pair for pair in pairs if veto(details(pair[1]), details(pair[0]))]
    assert len(vetoed) / len(pairs) < 0.02


def test_english_questions_are_not_read_as_korean():
    assert compatible("Can I use my card abroad?", "How can I use my card in another country?") is None
    assert details("Turn on the light").actions == frozenset()
