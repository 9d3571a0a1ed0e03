"""Cutting a document into passages: one section per heading, its paragraphs packed up to a size.

A passage is what retrieval finds and an answer cites, so it keeps the heading path of its section
("Billing > Refunds") and never runs past `max_chars`. Paragraphs stay whole where they fit; a longer
one is cut at sentence ends, then line ends, then spaces, and a word longer than a passage is cut hard.
Nothing but heading lines and whitespace is dropped.
"""

import re
from dataclasses import dataclass

MAX_CHARS = 1000

ATX_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
SETEXT_UNDERLINE = re.compile(r" {0,3}(=+|-+)[ \t]*")
FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
# Where a too long paragraph may be cut, best first; each separator stays with the text before it.
SENTENCE_END = re.compile(r"[.!?。！？…][\"'”’»)\]]*\s+")
LINE_END = re.compile(r"[ \t]*\n\s*")
SPACE = re.compile(r"\s+")
CUTS = (SENTENCE_END, LINE_END, SPACE)


@dataclass(frozen=True)
class Passage:
    heading: str  # the heading path of its section, "Billing > Refunds"; "" before the first heading
    text: str
    ordinal: int  # its place in the document, from 0


def split(text: str, max_chars: int = MAX_CHARS) -> list[Passage]:
    """Cut a Markdown or plain text into passages of at most `max_chars` characters, in document order."""
    passages = []
    for heading, paragraphs in _sections(text):
        pieces = [piece for paragraph in paragraphs for piece in _cut(paragraph, max_chars)]
        for chunk in _pack(pieces, max_chars):
            passages.append(Passage(heading=heading, text=chunk, ordinal=len(passages)))
    return passages


def _sections(text: str) -> list[tuple[str, list[str]]]:
    """Return (heading path, paragraphs) for each section; a fenced code block is one paragraph."""
    sections = [("", [])]
    headings: list[tuple[int, str]] = []  # the enclosing headings: (level, title)
    paragraph: list[str] = []
    fence = ""  # the opening fence while inside a code block

    def end_paragraph():
        joined = "\n".join(paragraph).strip()
        if joined:
            sections[-1][1].append(joined)
        paragraph.clear()

    def start_section(level: int, title: str):
        end_paragraph()
        while headings and headings[-1][0] >= level:
            headings.pop()
        headings.append((level, title))
        sections.append((" > ".join(title for _, title in headings if title), []))

    for line in text.splitlines():
        line = line.rstrip()
        if fence:
            paragraph.append(line)
            if line.lstrip().startswith(fence) and not line.lstrip().strip(fence[0]):  # as long or longer, alone
                fence = ""
                end_paragraph()
        elif opening := FENCE.match(line):
            end_paragraph()
            fence = opening.group(1)
            paragraph.append(line)
        elif heading := ATX_HEADING.fullmatch(line):
            start_section(len(heading.group(1)), (heading.group(2) or "").strip())
        elif (underline := SETEXT_UNDERLINE.fullmatch(line)) and len(paragraph) == 1:
            title = paragraph.pop().strip()
            start_section(1 if underline.group(1)[0] == "=" else 2, title)
        elif not line.strip():
            end_paragraph()
        else:
            paragraph.append(line)
    end_paragraph()
    return sections


def _cut(text: str, max_chars: int, level: int = 0) -> list[str]:
    """Cut a paragraph into pieces of at most `max_chars`, at the best places `CUTS[level:]` offer."""
    if len(text) <= max_chars:
        return [text]
    if level == len(CUTS):
        return [text[start:start + max_chars] for start in range(0, len(text), max_chars)]
    pieces, piece = [], ""
    for unit in _units(text, CUTS[level]):
        if len((piece + unit).rstrip()) <= max_chars:
            piece += unit
            continue
        if piece.strip():
            pieces.append(piece.rstrip())
        piece = unit
        if len(unit.rstrip()) > max_chars:
            pieces.extend(_cut(unit.rstrip(), max_chars, level + 1))
            piece = ""
    if piece.strip():
        pieces.append(piece.rstrip())
    return pieces


def _units(text: str, separator: re.Pattern) -> list[str]:
    """Split a text after each separator, which stays at the end of the unit before it."""
    units, start = [], 0
    for match in separator.finditer(text):
        units.append(text[start:match.end()])
        start = match.end()
    if start < len(text):
        units.append(text[start:])
    return units


def _pack(pieces: list[str], max_chars: int) -> list[str]:
    """Join consecutive pieces with blank lines into chunks of at most `max_chars`."""
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + 2 + len(piece) <= max_chars:
            chunks[-1] += "\n\n" + piece
        else:
            chunks.append(piece)
    return chunks
