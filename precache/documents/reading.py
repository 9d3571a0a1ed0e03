"""Reading the files a user imports (`precache docs import PATH...`) into documents of plain text.

Markdown, plain text and reStructuredText are read as they are; HTML is turned into Markdown-like text
(headings as `#` lines, one paragraph per block) so that the passage splitter sees its sections; PDF
text is taken page by page with pypdf, which the `pdf` extra installs.
"""

import hashlib
import os
import pathlib
from dataclasses import dataclass

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString

HTML_DROPPED = ["script", "style", "nav", "header", "footer", "head"]
HTML_BLOCKS = {
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption", "figure", "form",
    "li", "main", "ol", "p", "section", "table", "tr", "ul",
}
HTML_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
PDF_MISSING = "PDF needs the pdf extra: pip install 'precache[pdf]'"


@dataclass(frozen=True)
class Document:
    name: str  # the path it was imported as: "billing/refunds.md"
    text: str

    @property
    def content_hash(self) -> str:
        """Return the sha256 of the text, in hex: an unchanged file need not be imported again."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


class Unreadable(Exception):
    """A file that gives no text: its type is unknown, it is damaged, or it is empty."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def collect(paths: list[pathlib.Path]) -> list[tuple[str, pathlib.Path]]:
    """Expand files and folders into (name, path) pairs; a folder gives its readable files, not hidden ones.

    A file found in a folder is named by its path below that folder ("billing/refunds.md"), a file
    given directly by its file name.
    """
    found = []
    for path in paths:
        if path.is_dir():
            found.extend(_walk(path))
        elif path.is_file():
            found.append((path.name, path))
        else:
            raise FileNotFoundError(f"No such file or folder: {path}")
    return found


def _walk(folder: pathlib.Path) -> list[tuple[str, pathlib.Path]]:
    """Return the files of known type below a folder, hidden files and folders left out, sorted by name."""
    found = []
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]  # pruned: .git is not walked
        for name in files:
            path = pathlib.Path(root, name)
            if not name.startswith(".") and path.suffix.lower() in READERS:
                found.append((path.relative_to(folder).as_posix(), path))
    return sorted(found, key=lambda pair: pair[0].split("/"))


def read(name: str, path: pathlib.Path) -> Document:
    """Read a Markdown, text, reStructuredText, HTML or PDF file into a document, or raise Unreadable."""
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise Unreadable(name, f"unsupported file type {suffix or '(no suffix)'} (Markdown, text, HTML or PDF)")
    text = READERS[suffix](name, path)
    if not text.strip():
        raise Unreadable(name, "no text")
    return Document(name=name, text=text)


def _read_text(name: str, path: pathlib.Path) -> str:
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a byte order mark is dropped
    except UnicodeDecodeError:
        raise Unreadable(name, "not UTF-8 text") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read_html(name: str, path: pathlib.Path) -> str:
    # Given bytes, BeautifulSoup honours the page's declared charset.
    soup = BeautifulSoup(path.read_bytes(), "html.parser")
    for element in soup(HTML_DROPPED):
        element.decompose()
    return "\n\n".join(_html_blocks(soup))


def _html_blocks(root: Tag) -> list[str]:
    """Return the text of an HTML tree as blocks: a `#` line per heading, a paragraph per block element."""
    blocks: list[str] = []
    inline: list[str] = []  # the text of the block being read

    def end_block():
        text = " ".join("".join(inline).split())
        if text:
            blocks.append(text)
        inline.clear()

    def visit(node: Tag):
        for child in node.children:
            if isinstance(child, PreformattedString):  # comments, doctype, CDATA
                continue
            if isinstance(child, NavigableString):
                inline.append(str(child))
            elif child.name in HTML_HEADINGS:
                end_block()
                title = " ".join(child.get_text(" ").split())
                if title:
                    blocks.append("#" * HTML_HEADINGS[child.name] + " " + title)
            elif child.name == "pre":
                end_block()
                code = child.get_text().strip("\n")
                if code.strip():
                    blocks.append(f"```\n{code}\n```")  # fenced, so `#` lines in code stay code
            elif child.name in HTML_BLOCKS:
                end_block()
                visit(child)
                end_block()
            else:
                if child.name in ("br", "td", "th"):
                    inline.append(" ")
                visit(child)

    visit(root)
    end_block()
    return blocks


def _read_pdf(name: str, path: pathlib.Path) -> str:
    try:
        import pypdf
    except ImportError:
        raise Unreadable(name, PDF_MISSING) from None
    try:
        pages = pypdf.PdfReader(path).pages
        return "\n\n".join(page.extract_text() or "" for page in pages)
    except Exception as error:  # pypdf raises many kinds of error on a damaged file, not only PdfReadError
        raise Unreadable(name, f"not a readable PDF ({type(error).__name__}: {error})") from error


READERS = {
    ".md": _read_text, ".markdown": _read_text, ".txt": _read_text, ".text": _read_text, ".rst": _read_text,
    ".html": _read_html, ".htm": _read_html,
    ".pdf": _read_pdf,
}
