"""Text out of uploaded documents: PDF, DOCX, Markdown, HTML and plain text.

Each parser returns sections (text with its heading path and page) for the chunker. Anything
wrong with a file raises DocumentError with a message a knowledge admin can act on; nothing
here touches the database.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from lxml import etree

FORMATS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
}

# A DOCX is a zip: refuse archives that inflate beyond this, or by more than this ratio.
MAX_DOCX_UNCOMPRESSED = 200 * 1024 * 1024
MAX_DOCX_RATIO = 100


class DocumentError(Exception):
    """The file cannot be indexed; the message says why, in words for a knowledge admin."""


@dataclass(frozen=True)
class Section:
    text: str
    heading_path: tuple[str, ...] = ()
    page: int | None = None


@dataclass(frozen=True)
class ParsedDocument:
    kind: str
    title: str
    sections: list[Section] = field(default_factory=list)


def document_format(filename: str) -> str:
    """The format named by the file's extension, or DocumentError for unsupported ones."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in FORMATS:
        allowed = ", ".join(sorted(FORMATS))
        raise DocumentError(f"{suffix or 'no extension'} files are not supported ({allowed}).")
    return FORMATS[suffix]


def document_size_check(*, size: int, max_bytes: int) -> None:
    """Refuse a file over the upload limit (decimal megabytes, as file browsers show them)."""
    if size > max_bytes:
        raise DocumentError(
            f"The file is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB."
        )


def document_parse(*, filename: str, data: bytes, max_bytes: int) -> ParsedDocument:
    """Parse an uploaded file into sections of text."""
    document_size_check(size=len(data), max_bytes=max_bytes)
    kind = document_format(filename)
    stem = PurePath(filename).stem
    parser = {
        "pdf": _parse_pdf,
        "docx": _parse_docx,
        "markdown": _parse_markdown,
        "html": _parse_html,
        "text": _parse_text,
    }[kind]
    title, sections = parser(data)
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        hint = " (a scanned PDF? Koe does not read text in images)" if kind == "pdf" else ""
        raise DocumentError(f"No text could be extracted from the file{hint}.")
    return ParsedDocument(kind=kind, title=(title or stem).strip()[:300], sections=sections)


# -- plain text ---------------------------------------------------------------------------------
def decode_text(data: bytes) -> str:
    """Bytes of a text file to str: UTF-8 (with or without BOM) first, then detection
    (Shift_JIS / CP932 and EUC-JP are common in Japan)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise DocumentError("The text is in an unknown encoding (not UTF-8 or Shift_JIS).")
    return str(best)


def _parse_text(data: bytes) -> tuple[str, list[Section]]:
    if b"\x00" in data[:4096]:
        raise DocumentError("The file is not plain text (it contains binary data).")
    return "", [Section(text=decode_text(data))]


# -- structured formats -------------------------------------------------------------------------
class _Outline:
    """Collects text under the current heading path; the three structured parsers share it."""

    def __init__(self, title: str = "") -> None:
        self.title = title
        self.sections: list[Section] = []
        self._path: list[tuple[int, str]] = []
        self._buffer: list[str] = []

    def heading(self, level: int, text: str) -> None:
        self._flush()
        while self._path and self._path[-1][0] >= level:
            self._path.pop()
        self._path.append((level, text))
        # Without a title of its own, the document is called by its first top-level heading.
        if level == 1 and not self.title:
            self.title = text

    def text(self, text: str) -> None:
        if text:
            self._buffer.append(text)

    def result(self) -> tuple[str, list[Section]]:
        self._flush()
        return self.title, self.sections

    def _flush(self) -> None:
        if self._buffer:
            path = tuple(heading for _, heading in self._path)
            self.sections.append(Section("\n\n".join(self._buffer), path))
            self._buffer.clear()


# -- Markdown -----------------------------------------------------------------------------------
def _parse_markdown(data: bytes) -> tuple[str, list[Section]]:
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(decode_text(data))
    outline = _Outline()
    heading_level = 0
    for token in tokens:
        if token.type == "heading_open":
            heading_level = int(token.tag[1])
        elif token.type == "inline" and heading_level:
            outline.heading(heading_level, token.content.strip())
            heading_level = 0
        elif token.type in ("inline", "fence", "code_block"):
            outline.text(token.content.strip())
    return outline.result()


# -- HTML ---------------------------------------------------------------------------------------
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = {"p", "li", "td", "th", "pre", "blockquote", "dd", "dt", "figcaption", "caption"}


def _parse_html(data: bytes) -> tuple[str, list[Section]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "lxml")
    for tag in soup(["script", "style", "noscript", "template", "nav", "header", "footer"]):
        tag.decompose()
    outline = _Outline(soup.title.get_text(" ", strip=True) if soup.title else "")
    body = soup.body or soup
    for element in body.find_all([*_HEADINGS, *_BLOCKS]):
        if element.name in _HEADINGS:
            outline.heading(_HEADINGS[element.name], element.get_text(" ", strip=True))
        elif not element.find_parent(list(_BLOCKS)):
            # Nested blocks (a <p> inside an <li>) are read once, with their outermost block.
            outline.text(element.get_text(" ", strip=True))
    return outline.result()


# -- PDF ----------------------------------------------------------------------------------------
def _parse_pdf(data: bytes) -> tuple[str, list[Section]]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PyPdfError

    if not data.lstrip()[:5].startswith(b"%PDF-"):
        raise DocumentError("The file is named .pdf but is not a PDF.")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # Files with only an owner password (print or copy restrictions) open without one.
            try:
                opened = reader.decrypt("")
            except (PyPdfError, NotImplementedError) as exc:
                raise DocumentError("The PDF is encrypted and cannot be opened.") from exc
            if not opened:
                raise DocumentError("The PDF is protected by a password; upload it without one.")
        metadata = reader.metadata
        title = str(metadata.title or "") if metadata is not None else ""
        sections = [
            Section(text=page.extract_text() or "", page=number)
            for number, page in enumerate(reader.pages, start=1)
        ]
    except DocumentError:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise DocumentError(
            f"The PDF is damaged and cannot be read ({type(exc).__name__})."
        ) from exc
    return title, sections


# -- DOCX ---------------------------------------------------------------------------------------
def _parse_docx(data: bytes) -> tuple[str, list[Section]]:
    if not data.startswith(b"PK\x03\x04"):
        raise DocumentError("The file is named .docx but is not a Word document.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise DocumentError("The Word document is damaged and cannot be read.") from exc
    inflated = sum(info.file_size for info in infos)
    compressed = max(1, sum(info.compress_size for info in infos))
    if inflated > MAX_DOCX_UNCOMPRESSED or inflated / compressed > MAX_DOCX_RATIO:
        raise DocumentError("The Word document expands to an implausible size (a zip bomb?).")

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    damaged: tuple[type[BaseException], ...] = (PackageNotFoundError, *DAMAGED_ARCHIVE_ERRORS)
    try:
        document = docx.Document(io.BytesIO(data))
        return _docx_outline(document)
    except damaged as exc:
        raise DocumentError("The Word document is damaged and cannot be read.") from exc


# What zipfile, zlib, lxml and python-docx raise on a damaged Word file (fuzzing found the
# zlib and XML ones): all of them mean the same to the person who uploaded it.
DAMAGED_ARCHIVE_ERRORS: tuple[type[BaseException], ...] = (
    KeyError,
    ValueError,
    IndexError,
    TypeError,
    AttributeError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    etree.LxmlError,
)


def _docx_outline(document: Any) -> tuple[str, list[Section]]:
    outline = _Outline(document.core_properties.title or "")
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        level = _docx_heading_level(style)
        if level and text:
            outline.heading(level, text)
        else:
            outline.text(text)
    for table in document.tables:
        for row in table.rows:
            cells = [cell.text.strip() for cell in row.cells if cell.text.strip()]
            outline.text(" | ".join(dict.fromkeys(cells)))
    return outline.result()


def _docx_heading_level(style: str) -> int:
    if style == "Title":
        return 1
    parts = style.split()
    if len(parts) == 2 and parts[0] in ("Heading", "見出し") and parts[1].isdigit():
        return int(parts[1])
    return 0
