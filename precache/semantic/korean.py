"""Guards for Korean questions: the details an answer depends on, read through Korean grammar.

Korean attaches particles and endings to words (서울에, 서울은, 서울의; 켜 줘, 켜주세요, 켜기), negates
with short words and endings (안, 못, -지 않다, -지 마, 없다, 말고), and says "on" and "off" with one
syllable (켜 / 꺼). An embedder puts "거실 불 켜 줘" and "거실 불 꺼 줘" at cosine 0.99; these guards tell
them apart. Each detail is read from the words with their particles taken off, and two questions
differ in it only when both name it (a paraphrase may leave a detail out) or, for negation, when the
rest is near-identical.
"""

import re
from dataclasses import dataclass

# Particles (조사) and the copula that follow a noun, longest first; a word keeps at least one syllable.
PARTICLES = sorted(
    ["이랑", "에서", "에게", "한테", "께서", "으로", "부터", "까지", "처럼", "보다", "이나", "이라", "이요", "이에요",
     "이야", "에는", "에도", "에서는", "으로는", "로는", "이는", "에", "의", "은", "는", "이", "가", "을", "를", "로",
     "와", "과", "랑", "도", "만", "나", "요", "야", "께"],
    key=len, reverse=True)
# Opposite actions: the stems of one side of each pair. Two questions that name the two sides of one
# pair ask for opposite things; the key names the pair. A stem matches at the start of a word.
OPPOSITES = {
    "power": (("켜", "켠", "켤", "켜기", "켜줘"), ("꺼", "끄", "끈", "끌", "꺼줘")),
    "up": (("올려", "올리", "올린", "높여", "높이", "늘려", "늘리", "키워", "키우"),
           ("내려", "내리", "내린", "낮춰", "낮추", "줄여", "줄이", "작게")),
    "subscribe": (("신청", "가입", "등록", "구독", "개설", "연장", "예약"), ("해지", "취소", "탈퇴", "해제", "철회", "해약", "중단")),
    "open": (("열어", "열기", "열고", "열리", "열려", "열다"), ("닫아", "닫기", "닫고", "닫히", "닫혀", "닫다")),
    "start": (("시작", "재생", "실행", "켜짐"), ("종료", "정지", "중지", "멈춰", "멈추", "꺼짐")),
    "money": (("입금", "충전", "송금받"), ("출금", "인출", "환불")),
    "login": (("로그인",), ("로그아웃",)),
    "install": (("설치", "추가", "다운"), ("삭제", "제거", "지워", "지우")),
    "lock": (("잠가", "잠그", "잠금"), ("해제", "풀어", "풀기")),
    "buy": (("구매", "구입", "사고싶", "살래", "사려"), ("판매", "팔고", "팔래", "팔려")),
    "borrow": (("빌려", "대출"), ("갚", "상환", "반납")),
}
# Words that negate the request they stand in; matched against the words with particles taken off.
# Verbs that ask not to do something count as negation: "피해 주세요" (avoid it) is "하지 마세요".
NEGATION = re.compile(r"^(안|못|않|없|말고|말아|마세요|마요|마라|안돼|안되|안됨|못해|못하|못했|못한|못할|피해|피하|금지|자제|삼가|보류)")
NOT_NEGATION = ("안내", "안전", "안녕", "안드로", "안방", "안경", "안쪽", "안에", "안의", "못생", "없애")
NEGATION_INSIDE = re.compile(r"(않|없[다어요나는이었을음지고]|없$|없(?=\s)|못\s?하"
                             r"|(?:지(?:는|도)?|진)\s?(?:마(?:세요|요|라|십시오|시기|시고)?(?![가-힣])|말(?:고|아|라|자)|맙))")
PLACES = frozenset(
    "서울 부산 대구 인천 광주 대전 울산 세종 제주 제주도 경기 경기도 강원 강원도 충북 충남 전북 전남 경북 경남 수원 성남 고양 "
    "용인 창원 청주 전주 천안 포항 김해 강남 강북 홍대 명동 판교 일산 분당 해운대 여의도 잠실 신촌 종로 이태원 인천공항 김포 "
    "한국 미국 일본 중국 영국 프랑스 독일 캐나다 호주 베트남 태국 대만 홍콩 싱가포르 러시아 인도 필리핀 유럽 동남아 해외 국내".split())
DAYS = frozenset(
    "월요일 화요일 수요일 목요일 금요일 토요일 일요일 주말 평일 오늘 내일 모레 어제 그제 오전 오후 아침 점심 저녁 새벽 밤 "
    "금일 명일 이번주 다음주 지난주 이번달 다음달 지난달 올해 작년 내년 설날 추석 연말 연초 봄 여름 가을 겨울".split())
# Things of one kind that a question names and its answer depends on; two of a kind are other questions.
OBJECTS = {
    "device": "안드로이드 아이폰 갤럭시 아이패드 맥북 윈도우 맥 리눅스 노트북 데스크톱 태블릿 컴퓨터 핸드폰 휴대폰 스마트폰 "
              "워치 에어팟 티비 TV 냉장고 세탁기 에어컨 청소기 프린터 모니터 키보드 마우스".split(),
    "channel": "문자 이메일 메일 카톡 카카오톡 전화 팩스 우편 라인 인스타 페이스북 왓츠앱 텔레그램".split(),
    "payment": "카드 신용카드 체크카드 현금 계좌이체 무통장 카카오페이 네이버페이 상품권 포인트 쿠폰".split(),
    "brand": "삼성 엘지 애플 구글 네이버 카카오 다음 쿠팡 현대 기아 SK KT LG 소니".split(),
    "transport": "버스 지하철 택시 기차 비행기 KTX 배 자전거 자동차 차 오토바이".split(),
    "account": "아이디 비밀번호 비번 계정 이름 주소 전화번호 닉네임 프로필 사진".split(),
    "room": "거실 안방 부엌 주방 화장실 욕실 현관 베란다 침실 방".split(),
    "food": "커피 차 우유 물 주스 맥주 와인 소주 밥 빵 피자 치킨".split(),
    "family": "아빠 엄마 아버지 어머니 형 누나 오빠 언니 동생 할머니 할아버지 아들 딸 남편 아내".split(),
}
KIND_OF = {word.casefold(): kind for kind, words in OBJECTS.items() for word in words}
# Two names of one thing.
SAME = {"카톡": "카카오톡", "비번": "비밀번호", "핸드폰": "휴대폰", "스마트폰": "휴대폰", "메일": "이메일", "티비": "tv",
        "국내": "한국", "우리나라": "한국", "데스크탑": "데스크톱", "구매": "구입", "주방": "부엌", "욕실": "화장실",
        "아버지": "아빠", "어머니": "엄마", "금일": "오늘", "명일": "내일", "아침": "오전", "낮": "오후"}
# Actions named as a noun first ("구독 취소", "예약 취소"): when a question names both sides, it asks for the second.
NOUN_FIRST = frozenset(["subscribe", "install", "money"])
NATIVE_TENS = {"열": 10, "스무": 20, "스물": 20, "서른": 30, "마흔": 40, "쉰": 50}
NATIVE_UNITS = {"한": 1, "하나": 1, "두": 2, "둘": 2, "세": 3, "셋": 3, "네": 4, "넷": 4, "다섯": 5, "여섯": 6,
                "일곱": 7, "여덟": 8, "아홉": 9}
SINO_DIGITS = {"일": 1, "이": 2, "삼": 3, "사": 4, "오": 5, "육": 6, "칠": 7, "팔": 8, "구": 9}
SINO_UNITS = {"십": 10, "백": 100, "천": 1000, "만": 10000}
# "한 분" is "the one who did", not one person: 분 counts only after digits.
COUNTERS = "개|명|시|번|달|살|시간|장|권|잔|마리|병|대|벌|켤레|가지|군데|주|초|층|년|월|일|원|달러|불|퍼센트|프로|배|박"
# A counter ends the word or a particle follows it ("두시에", "일층이랑"); "네일" (nail) is no number.
COUNTED_BY = sorted("에 이 은 는 을 를 랑 이랑 과 와 까지 부터 쯤 정도 짜리 만 도 인지 인가 하고 반 이나 나 이에요 입니다 이요 으로 로 "
                    "에서".split(), key=len, reverse=True)
SINO_COUNTERS = "원|만원|천원|달러|층|퍼센트|프로|시|도|분|초|년|개월|회|인분|킬로|키로|미터|그램|리터|호|박"
_AFTER = rf"(?=$|[^가-힣]|(?:{'|'.join(COUNTED_BY)}))"
_NATIVE = re.compile(rf"(?<![가-힣])(?:({'|'.join(NATIVE_TENS)})\s?)?"
                     rf"({'|'.join(sorted(NATIVE_UNITS, key=len, reverse=True))})?(?<=[가-힣])\s?(?:{COUNTERS}){_AFTER}")
_SINO = re.compile(rf"(?<![가-힣])([일이삼사오육칠팔구십백천만]+)\s?({SINO_COUNTERS}){_AFTER}")
_DIGITS = re.compile(r"(\d+(?:[.,]\d+)*)\s?(만|천|백)?\s?([가-힣]+|%)?")
_WORD = re.compile(r"[가-힣]+|[A-Za-z][A-Za-z0-9+#]*")
NEAR = 0.4  # overlap of letter pairs above which a difference in negation alone decides


@dataclass(frozen=True)
class KoreanDetails:
    """The details of a Korean question that its answer depends on."""

    negated: bool
    actions: frozenset[tuple[str, int]]  # (pair, side) of each opposite action named
    places: frozenset[str]
    days: frozenset[str]
    numbers: frozenset[str]
    objects: frozenset[tuple[str, str]]  # (kind, word)
    excluded: frozenset[str] = frozenset()  # what "X 말고", "X 빼고" leaves out
    bigrams: frozenset[str] = frozenset()  # pairs of letters, spaces and negation left out: how near two wordings are


def strip_particle(word: str) -> str:
    """Return a word without the particle or copula attached to its end (서울에 -> 서울, 아이폰은 -> 아이폰)."""
    for particle in PARTICLES:
        if word.endswith(particle) and len(word) > len(particle) + (len(particle) == 1):
            return word[: -len(particle)]
    return word


def _named(word: str, lexicon) -> str | None:
    """Return the lexicon word a word starts with (longest first), whatever follows it (서울에서는 -> 서울)."""
    folded = word.casefold()
    for size in range(len(folded), 0, -1):
        head, rest = folded[:size], folded[size:]
        if head in lexicon and (size >= 2 or not rest or rest in PARTICLES):
            return SAME.get(head, head)
    return None


def _value(sino: str) -> int | None:
    """Return the value of a Sino-Korean number written in Hangul (삼만 -> 30000, 오천 -> 5000)."""
    total, digit = 0, 0
    for ch in sino:
        if ch in SINO_DIGITS:
            digit = SINO_DIGITS[ch]
        elif ch == "만":
            total, digit = (total + (digit or 1)) * 10000, 0
        else:
            total, digit = total + (digit or 1) * SINO_UNITS[ch], 0
    return total + digit or None


def _numbers(text: str) -> set[str]:
    found = set()
    for m in _DIGITS.finditer(text):
        value = float(m.group(1).replace(",", ""))
        value *= {"만": 10000, "천": 1000, "백": 100}.get(m.group(2) or "", 1)
        unit = (m.group(3) or "")[:2]
        found.add(f"{value:g}" if unit[:1] != "%" else f"{value:g}%")
    for m in _NATIVE.finditer(text):
        if m.group(1) or m.group(2):
            found.add(str(NATIVE_TENS.get(m.group(1), 0) + NATIVE_UNITS.get(m.group(2), 0)))
    for m in _SINO.finditer(text):
        if (value := _value(m.group(1))) is not None:
            unit = m.group(2)
            value *= 10000 if unit == "만원" else 1000 if unit == "천원" else 1
            found.add(f"{value:g}")
    return found


def _actions(words: list[str]) -> set[tuple[str, int]]:
    """Return the (pair, side) of each opposite action a question asks for; a choice between both sides is none."""
    text = " ".join(w for w in words if not w.startswith(("꺼내", "다운타운")))
    named: dict[str, list[tuple[int, int]]] = {}  # pair -> (position, side) of each mention
    for pair, sides in OPPOSITES.items():
        for side, stems in enumerate(sides):
            for stem in stems:
                # A verb stem starts a word (켜 in 켜줘, not in 켜켜이); a noun-first action may end a compound
                # (가입해지).
                named.setdefault(pair, []).extend(
                    (m.start(), side) for m in re.finditer(re.escape(stem), text)
                    if pair in NOUN_FIRST or m.start() == 0 or text[m.start() - 1] == " ")
    found = set()
    for pair, mentions in named.items():
        sides = {side for _, side in mentions}
        if len(sides) == 1:
            found.add((pair, sides.pop()))
        elif sides and pair in NOUN_FIRST:
            found.add((pair, max(mentions)[1]))
    return found


def details(text: str) -> KoreanDetails:
    """Read the details of a Korean question."""
    words = _WORD.findall(text)
    stems = [strip_particle(w) for w in words]
    joined = " ".join(words)
    negated = any(NEGATION.match(w) and not w.startswith(NOT_NEGATION) for w in words)
    negated = negated or bool(NEGATION_INSIDE.search(joined))
    squashed = [a + b for a, b in zip(words, words[1:])]  # 이번 주 -> 이번주
    return KoreanDetails(
        negated=negated,
        actions=frozenset(_actions(words)),
        places=_all_named(words, PLACES),
        days=_all_named(words + squashed, DAYS),
        numbers=frozenset(_numbers(text)),
        objects=frozenset((KIND_OF.get(w, ""), w) for w in _all_named(words, KIND_OF)),
        excluded=frozenset(SAME.get(a, a) for a, b in zip(stems, words[1:]) if b.startswith(("말고", "빼고", "제외"))),
        bigrams=_bigrams(text),
    )


def _bigrams(text: str) -> frozenset[str]:
    letters = re.sub(r"\s+|안 |못 |않|없|말고|지 마|지마", "", text.casefold())
    return frozenset(letters[i:i + 2] for i in range(len(letters) - 1))


def _all_named(words: list[str], lexicon) -> frozenset[str]:
    return frozenset(n for w in words if (n := _named(w, lexicon)) is not None)


def overlap(a: KoreanDetails, b: KoreanDetails) -> float:
    """Return the Jaccard overlap of two questions' letter pairs (endings differ more than words in Korean)."""
    return len(a.bigrams & b.bigrams) / max(1, len(a.bigrams | b.bigrams))


def _differ(mine: frozenset, other: frozenset) -> bool:
    """Tell whether each names something the other does not (a paraphrase may leave a detail out)."""
    return bool(mine - other) and bool(other - mine)


def _kinds_differ(mine: frozenset, other: frozenset) -> bool:
    """Tell whether, for a kind of thing both name, each names one of that kind the other does not."""
    return any(_differ(frozenset(w for k, w in mine if k == kind), frozenset(w for k, w in other if k == kind))
               for kind in {k for k, _ in mine} & {k for k, _ in other})


def veto(q: KoreanDetails, c: KoreanDetails) -> str | None:
    """Return the name of the guard that vetoes serving `c`'s answer for `q`, or None."""
    if _differ(q.numbers, c.numbers):
        return "number"
    if _differ(q.days, c.days):
        return "date"
    if _differ(q.places, c.places):
        return "place"
    if _kinds_differ(q.objects, c.objects):
        return "object"
    if _differ(q.actions, c.actions) and {p for p, _ in q.actions} & {p for p, _ in c.actions}:
        return "opposite"
    if _differ(q.excluded, c.excluded):
        return "negation"
    if q.negated != c.negated and overlap(q, c) >= NEAR:
        return "negation"
    return None
