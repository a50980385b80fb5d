"""Make PDF fixtures at test time with fpdf2.

The core fonts (Helvetica) only cover Latin-1: keep the text Latin-1 (é and ë are fine,
"€" is not: write "EUR"). Every file is deterministic: the creation date is fixed, so the
same arguments give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterator
from pathlib import Path

from fpdf import FPDF

FIXED_DATE = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
_LINE_HEIGHT = 5.0
_WRAP_CHARS = 90


def _new_pdf(title: str | None = None) -> FPDF:
    pdf = FPDF(format="A4")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_font("Helvetica", size=10)
    if title is not None:
        pdf.set_title(title)
    return pdf


def _write_page(pdf: FPDF, text: str) -> None:
    """Start a page and write `text` on it, one paragraph per line of `text`."""
    pdf.add_page()
    for line in text.split("\n"):
        if line.strip():
            pdf.multi_cell(0, _LINE_HEIGHT, line, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.ln(_LINE_HEIGHT)


def make_text_pdf(path: Path, pages: list[str], title: str | None = None) -> Path:
    """A PDF with one page per entry of `pages` (long text flows onto extra pages)."""
    pdf = _new_pdf(title)
    for text in pages:
        _write_page(pdf, text)
    pdf.output(str(path))
    return path


def make_encrypted_pdf(path: Path, text: str, user_password: str = "secret") -> Path:
    """A one-page PDF that needs `user_password` to open (RC4, no extra crypto library)."""
    pdf = _new_pdf()
    pdf.set_encryption(owner_password="owner-" + user_password, user_password=user_password)
    _write_page(pdf, text)
    pdf.output(str(path))
    return path


def make_image_only_pdf(path: Path, pages: int = 2) -> Path:
    """A PDF whose pages only carry drawn shapes: what a scan looks like to a text extractor."""
    pdf = _new_pdf()
    for index in range(pages):
        pdf.add_page()
        pdf.set_fill_color(200, 200 - 20 * (index % 5), 180)
        pdf.rect(20, 30, 170, 120, style="DF")
        pdf.line(20, 160, 190, 250)
    pdf.output(str(path))
    return path


def make_truncated_pdf(path: Path) -> Path:
    """A valid three-page PDF cut in half (no cross-reference table, no trailer)."""
    make_text_pdf(path, [f"Artikel {n} Loon\nDe werknemer ontvangt loon." for n in (1, 2, 3)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def cao_page_text(number: int) -> str:
    """Realistic CAO-like text for page `number` (1-based); it varies with the number."""
    chapter = (number - 1) // 10 + 1
    article = number
    scale = chr(ord("A") + number % 8)
    amount = 2100 + (number * 37) % 1400
    lines = [
        f"Hoofdstuk {chapter} Arbeidsvoorwaarden" if number % 10 == 1 else "",
        f"Artikel {article} Loon en toeslagen (pagina {number})",
        f"1. De werknemer in schaal {scale} ontvangt per 1 januari 2025 een maandloon van "
        f"ten minste EUR {amount // 1000}.{amount % 1000:03d},00 bruto.",
        f"2. Per 01-07-2025 worden de lonen verhoogd met {1 + number % 4},{number % 10}%, "
        "zoals bedoeld in artikel 5 lid 2 van deze cao.",
        "3. De werkgever betaalt een toeslag voor overwerk:",
        "a. voor de eerste twee uur 125% van het uurloon;",
        "b. voor ieder volgend uur 150% van het uurloon;",
        "c. op zon- en feestdagen 200% van het uurloon.",
        "4. Partijen bij deze cao zijn de werkgeversvereniging enerzijds en FNV, "
        "CNV Vakmensen en De Unie anderzijds. Geschillen over de uitleg van dit artikel "
        "worden voorgelegd aan de paritaire commissie, die binnen zes weken een oordeel geeft.",
    ]
    return "\n".join(line for line in lines if line)


def _many_pages(pages: int) -> Iterator[str]:
    for number in range(1, pages + 1):
        yield cao_page_text(number)


def make_many_pages_pdf(path: Path, pages: int = 1000) -> Path:
    """A long PDF with exactly `pages` pages of CAO-like text (1,000 pages in well under 1 s).

    Lines are wrapped by textwrap and placed with `FPDF.text`, which is about 20 times faster
    than `multi_cell`; the layout is plain but the text layer is what the parser reads.
    """
    pdf = _new_pdf(title=f"Testcao met {pages} pagina's")
    pdf.set_auto_page_break(auto=False)
    for text in _many_pages(pages):
        pdf.add_page()
        y = pdf.t_margin + _LINE_HEIGHT
        for line in text.split("\n"):
            for part in textwrap.wrap(line, _WRAP_CHARS):
                pdf.text(pdf.l_margin, y, part)
                y += _LINE_HEIGHT
    pdf.output(str(path))
    return path


def make_shared_stream_pdf(path: Path, pages: int, stream_bytes: int) -> Path:
    """A small file whose `pages` pages all draw one Flate stream of `stream_bytes` bytes
    (issue 10: 2,000 pages sharing one 60 MB stream, 375 KB on disk, burn CPU per page).
    Written by hand: fpdf2 gives each page its own content stream."""
    import zlib

    op = b"BT /F1 12 Tf 72 720 Td (Artikel 1 loon) Tj ET\n"
    data = zlib.compress(op * (stream_bytes // len(op)), 9)
    kids = b" ".join(f"{5 + i} 0 R".encode() for i in range(pages))
    page = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
            b" /Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>")  # fmt: skip
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(pages).encode() + b" >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length "
        + str(len(data)).encode()
        + b" /Filter /FlateDecode >>\nstream\n"
        + data
        + b"\nendstream",
        *([page] * pages),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
            "%%EOF\n").encode()  # fmt: skip
    path.write_bytes(bytes(out))
    return path
