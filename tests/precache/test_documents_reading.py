"""Reading imported files into documents, and cutting documents into passages."""

import hashlib
import random
import sys

import pytest

from precache.documents.passages import MAX_CHARS, Passage, split
from precache.documents.reading import PDF_MISSING, Document, Unreadable, collect, read


def write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def pdf_with_text(*pages: str) -> bytes:
    """Return a minimal PDF with one page per string, each string drawn in Helvetica."""
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >>"
            f" /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
    pdf, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(pdf)


# collect: what `precache docs import PATH...` picks up


def test_collect_names_files_by_their_path_below_the_folder_given(tmp_path):
    docs = tmp_path / "docs"
    for name in ["billing/refunds.md", "billing/invoices/vat.rst", "index.HTML", "guide.pdf", "notes.txt"]:
        write(docs / name, "text")
    for name in [".draft.md", ".git/README.md", "billing/.old/refunds.md", "logo.png", "Makefile"]:
        write(docs / name, "not imported")

    found = collect([docs])

    assert [name for name, _ in found] == [
        "billing/invoices/vat.rst", "billing/refunds.md", "guide.pdf", "index.HTML", "notes.txt",
    ]
    assert found[1][1] == docs / "billing" / "refunds.md"


def test_collect_names_a_file_given_directly_by_its_file_name_whatever_its_type(tmp_path):
    faq = write(tmp_path / "docs" / "faq.md", "# FAQ")
    logo = write(tmp_path / "logo.png", b"\x89PNG")
    hidden = write(tmp_path / ".notes.txt", "given by name, so taken")

    assert collect([faq, logo, hidden]) == [("faq.md", faq), ("logo.png", logo), (".notes.txt", hidden)]
    with pytest.raises(Unreadable) as error:
        read("logo.png", logo)
    assert error.value.name == "logo.png"
    assert str(error.value) == "logo.png: unsupported file type .png (Markdown, text, HTML or PDF)"


def test_collect_keeps_the_order_of_the_paths_given(tmp_path):
    b = write(tmp_path / "b.md", "b")
    write(tmp_path / "folder" / "a.md", "a")

    assert [name for name, _ in collect([b, tmp_path / "folder"])] == ["b.md", "a.md"]


def test_collect_refuses_a_path_that_does_not_exist(tmp_path):
    write(tmp_path / "real.md", "text")

    with pytest.raises(FileNotFoundError, match="missing.md"):
        collect([tmp_path / "real.md", tmp_path / "missing.md"])


# read: Markdown and text


def test_read_markdown_drops_the_byte_order_mark_and_windows_line_ends(tmp_path):
    path = write(tmp_path / "refunds.md", "\ufeff# Refunds\r\n\r\nWithin 5 days.\r\n".encode("utf-8"))

    document = read("billing/refunds.md", path)

    assert document == Document(name="billing/refunds.md", text="# Refunds\n\nWithin 5 days.\n")
    assert document.content_hash == hashlib.sha256(document.text.encode("utf-8")).hexdigest()
    assert document.content_hash != Document(name="other.md", text="# Refunds\n\nWithin 6 days.\n").content_hash


@pytest.mark.parametrize("content", [b"", b"  \n\n\t \r\n", b"<html><body><script>x()</script></body></html>"])
def test_read_a_file_without_text_is_unreadable(tmp_path, content):
    suffix = ".html" if b"html" in content else ".txt"
    path = write(tmp_path / f"empty{suffix}", content)

    with pytest.raises(Unreadable) as error:
        read(path.name, path)

    assert error.value.reason == "no text"
    assert str(error.value) == f"{path.name}: no text"


def test_read_bytes_that_are_not_utf8_are_unreadable(tmp_path):
    path = write(tmp_path / "latin1.txt", "café crème".encode("latin-1"))

    with pytest.raises(Unreadable, match="latin1.txt: not UTF-8 text"):
        read("latin1.txt", path)


# read: HTML comes out as Markdown-like text


PAGE = """<!DOCTYPE html>
<html><head><title>Acme help</title><style>p { color: red }</style></head>
<body>
  <header><a href="/">Acme</a></header>
  <nav><ul><li>Home</li><li>Pricing</li></ul></nav>
  <h1>Billing</h1>
  <p>We bill   on the <b>first</b> day
     of the month.<br>Invoices are emailed.</p>
  <!-- a comment -->
  <h2>Refunds</h2>
  <ul><li>Within <a href="/days">5 days</a></li><li>To the same card</li></ul>
  <script>track("refunds")</script>
  <pre># not a heading
refund --all</pre>
  <footer>Copyright Acme</footer>
</body></html>
"""


def test_read_html_turns_headings_paragraphs_and_list_items_into_markdown(tmp_path):
    path = write(tmp_path / "billing.html", PAGE)

    text = read("billing.html", path).text

    assert text == (
        "# Billing\n\n"
        "We bill on the first day of the month. Invoices are emailed.\n\n"
        "## Refunds\n\n"
        "Within 5 days\n\n"
        "To the same card\n\n"
        "```\n# not a heading\nrefund --all\n```"
    )
    assert [(p.heading, p.text) for p in split(text, max_chars=80)] == [
        ("Billing", "We bill on the first day of the month. Invoices are emailed."),
        ("Billing > Refunds", "Within 5 days\n\nTo the same card\n\n```\n# not a heading\nrefund --all\n```"),
    ]


def test_read_html_honours_the_declared_charset(tmp_path):
    page = '<html><head><meta charset="euc-kr"></head><body><p>환불은 5일 안에 됩니다.</p></body></html>'
    path = write(tmp_path / "ko.htm", page.encode("euc-kr"))

    assert read("ko.htm", path).text == "환불은 5일 안에 됩니다."


# read: PDF


def test_read_pdf_joins_the_text_of_its_pages(tmp_path):
    pytest.importorskip("pypdf")
    path = write(tmp_path / "manual.pdf", pdf_with_text("Refunds take five days.", "Invoices are monthly."))

    text = read("manual.pdf", path).text

    assert [page.strip() for page in text.split("\n\n")] == ["Refunds take five days.", "Invoices are monthly."]


def test_read_a_pdf_without_text_is_unreadable(tmp_path):
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    path = tmp_path / "scan.pdf"
    writer.write(path)

    with pytest.raises(Unreadable, match="scan.pdf: no text"):
        read("scan.pdf", path)


@pytest.mark.parametrize("content", [b"%PDF-1.4\nnot really a PDF\n", pdf_with_text("cut short")[:150]])
def test_read_a_damaged_pdf_is_unreadable(tmp_path, content):
    pytest.importorskip("pypdf")
    path = write(tmp_path / "broken.pdf", content)

    with pytest.raises(Unreadable, match="broken.pdf: not a readable PDF"):
        read("broken.pdf", path)


def test_read_pdf_without_pypdf_names_the_extra_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pypdf", None)  # `import pypdf` now fails as if it were not installed
    path = write(tmp_path / "manual.pdf", pdf_with_text("Refunds take five days."))

    with pytest.raises(Unreadable) as error:
        read("manual.pdf", path)

    assert error.value.reason == PDF_MISSING == "PDF needs the pdf extra: pip install 'precache[pdf]'"


# split: sections and passages


def test_split_gives_each_passage_the_heading_path_of_its_section():
    text = """Welcome to Acme.

# Billing

We bill monthly.

## Refunds ##

Within 5 days.

### By card

To the same card.

## Invoices

Emailed on the 1st.

# Account

Change your password in settings.
"""
    assert split(text) == [
        Passage(heading="", text="Welcome to Acme.", ordinal=0),
        Passage(heading="Billing", text="We bill monthly.", ordinal=1),
        Passage(heading="Billing > Refunds", text="Within 5 days.", ordinal=2),
        Passage(heading="Billing > Refunds > By card", text="To the same card.", ordinal=3),
        Passage(heading="Billing > Invoices", text="Emailed on the 1st.", ordinal=4),
        Passage(heading="Account", text="Change your password in settings.", ordinal=5),
    ]


def test_split_reads_underlined_headings():
    text = "Billing\n=======\n\nWe bill monthly.\n\nRefunds\n-------\nWithin 5 days.\n"

    assert [(p.heading, p.text) for p in split(text)] == [
        ("Billing", "We bill monthly."),
        ("Billing > Refunds", "Within 5 days."),
    ]


def test_split_gives_no_passage_for_headings_or_whitespace_alone():
    assert split("# Billing\n\n## Refunds\n\n   \n\t\n") == []
    assert split("") == []


def test_split_packs_paragraphs_of_a_section_up_to_max_chars():
    paragraphs = ["a" * 40, "b" * 40, "c" * 40, "d" * 10]

    passages = split("\n\n".join(paragraphs) + "\n\n# Next\n\n" + "e" * 5, max_chars=100)

    assert [p.text for p in passages] == ["a" * 40 + "\n\n" + "b" * 40, "c" * 40 + "\n\n" + "d" * 10, "e" * 5]
    assert [p.ordinal for p in passages] == [0, 1, 2]


def test_split_keeps_a_paragraph_of_exactly_max_chars_whole():
    assert [p.text for p in split("x" * MAX_CHARS)] == ["x" * MAX_CHARS]


def test_split_cuts_a_long_paragraph_at_sentence_ends():
    sentences = [f"Sentence number {i} says something about refunds and invoices." for i in range(20)]

    passages = split(" ".join(sentences), max_chars=150)

    assert len(passages) > 5
    assert all(len(p.text) <= 150 and p.text.endswith(".") for p in passages)
    assert " ".join(p.text for p in passages) == " ".join(sentences)


def test_split_cuts_korean_at_sentence_ends():
    sentences = ["환불은 영업일 기준 5일 이내에 처리됩니다.", "카드 결제는 카드사 사정에 따라 더 걸릴 수 있습니다!",
                 "영수증이 필요하신가요?", "고객센터로 문의해 주세요。"] * 5

    passages = split(" ".join(sentences), max_chars=60)

    assert all(len(p.text) <= 60 for p in passages)
    assert all(p.text.endswith(("다.", "다!", "요?", "요。")) for p in passages)
    assert " ".join(p.text for p in passages) == " ".join(sentences)


@pytest.mark.parametrize("end", [".", "!", "?", "。", "！", "？"])
def test_split_knows_the_sentence_ends_of_korean_and_cjk_text(end):
    sentence = f"고객센터로 문의해 주세요{end}"

    passages = split(" ".join([sentence] * 10), max_chars=40)

    assert [p.text for p in passages] == [f"{sentence} {sentence}"] * 5


def test_split_cuts_a_sentence_longer_than_max_chars_at_spaces_and_a_word_hard():
    passages = split("word " * 10 + "x" * 25, max_chars=12)

    assert [p.text for p in passages] == ["word word"] * 5 + ["x" * 12, "x" * 12, "x"]


def test_split_keeps_a_fenced_code_block_whole_and_its_hash_lines_as_code():
    text = "# Setup\n\n```bash\n# install\npip install acme\n\n# run\nacme serve\n```\n\nThen open the page.\n"

    passages = split(text, max_chars=60)

    assert [(p.heading, p.text) for p in passages] == [
        ("Setup", "```bash\n# install\npip install acme\n\n# run\nacme serve\n```"),
        ("Setup", "Then open the page."),
    ]


def test_split_cuts_a_long_code_block_at_line_ends():
    lines = [f"    total = step_{i}(total, rate{i % 7 * 's'})" for i in range(30)]

    passages = split("```\n" + "\n".join(lines) + "\n```", max_chars=100)

    assert all(len(p.text) <= 100 for p in passages)
    cut_lines = [line.strip() for p in passages for line in p.text.splitlines()]
    assert cut_lines == ["```", *(line.strip() for line in lines), "```"]


def generated_document(rng: random.Random) -> tuple[str, list[str]]:
    """Return a random Markdown text and the words of its paragraphs (its heading lines left out)."""
    blocks, words = [], []
    for _ in range(rng.randint(1, 30)):
        if rng.random() < 0.2:
            blocks.append("#" * rng.randint(1, 4) + " " + " ".join(random_word(rng) for _ in range(3)))
            continue
        ends = [" ", " ", " ", "\n", "  ", ". ", "? ", "다. ", "。 "]
        paragraph = "".join(random_word(rng) + rng.choice(ends) for _ in range(rng.randint(1, 150)))
        blocks.append(paragraph)
        words += paragraph.split()
    return "\n\n".join(blocks), words


def random_word(rng: random.Random) -> str:
    length = rng.choice([rng.randint(1, 12), rng.randint(1, 12), rng.randint(20, 60)])
    return "".join(rng.choice("abcdefghij환불영수증") for _ in range(length))


@pytest.mark.parametrize("seed", range(40))
def test_split_loses_no_words_and_keeps_every_passage_under_max_chars(seed):
    rng = random.Random(seed)
    text, words = generated_document(rng)
    max_chars = rng.choice([40, 80, 300, MAX_CHARS])

    passages = split(text, max_chars=max_chars)

    assert all(0 < len(p.text) <= max_chars and p.text.strip() for p in passages)
    assert [p.ordinal for p in passages] == list(range(len(passages)))
    passage_words = [word for p in passages for word in p.text.split()]
    if max(map(len, words)) <= max_chars:
        assert passage_words == words
    else:  # a word longer than a passage is cut hard, but none of its letters is lost
        assert "".join(passage_words) == "".join(words)
