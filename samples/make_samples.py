"""Write the sample PDFs in this folder from their text sources in src/.

Usage: python samples/make_samples.py   (needs fpdf2; rewrites samples/*.pdf)

Each source is Latin-1 text (the PDF core fonts have no "€": the sources write "EUR").
Line 1 is the title (also the PDF's metadata title); a line "=== pagina ===" starts a new
page; lines starting with "Hoofdstuk" or "Artikel" are headings; lines with " | " are
table rows. The creation date is fixed, so the same fpdf2 version writes the same bytes.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from fpdf import FPDF

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
PAGE_BREAK = "=== pagina ==="
CREATED = dt.datetime(2025, 1, 15, 9, 0, 0, tzinfo=dt.UTC)
LINE = 5.0


class SamplePdf(FPDF):
    """A4 document with a running footer: "<title> - pagina N"."""

    def __init__(self, title: str) -> None:
        super().__init__(format="A4")
        self.doc_title = title
        self.set_title(title)
        self.set_author("lexi-maint samples (fictional)")
        self.set_creation_date(CREATED)
        self.set_auto_page_break(auto=True, margin=20)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", size=8)
        self.cell(0, 10, f"{self.doc_title} - pagina {self.page_no()}", align="C")


def write_line(pdf: SamplePdf, line: str, table_row: int) -> None:
    """Write one source line in the style its first words call for."""
    if not line.strip():
        pdf.ln(3)
    elif " | " in line:
        cells = [cell.strip() for cell in line.split(" | ")]
        pdf.set_font("Helvetica", style="B" if table_row == 0 else "", size=10)
        for cell in cells:
            pdf.cell(pdf.epw / len(cells), LINE + 1, cell, border=1)
        pdf.ln(LINE + 1)
    elif line.startswith("Hoofdstuk "):
        pdf.ln(2)
        pdf.set_font("Helvetica", style="B", size=12)
        pdf.multi_cell(0, LINE + 2, line, new_x="LMARGIN", new_y="NEXT")
    elif line.startswith("Artikel "):
        pdf.set_font("Helvetica", style="B", size=10)
        pdf.multi_cell(0, LINE + 1, line, new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.set_font("Helvetica", size=10)
        pdf.multi_cell(0, LINE, line, new_x="LMARGIN", new_y="NEXT")


def render(source: Path, target: Path) -> int:
    """Write `target` from `source`; returns the number of pages written."""
    lines = source.read_text(encoding="utf-8").splitlines()
    title = lines[0].strip()
    pdf = SamplePdf(title)
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=14)
    pdf.multi_cell(0, LINE + 3, title, new_x="LMARGIN", new_y="NEXT")
    table_row = 0
    for line in lines[1:]:
        if line.strip() == PAGE_BREAK:
            pdf.add_page()
            continue
        write_line(pdf, line, table_row)
        table_row = table_row + 1 if " | " in line else 0
    pdf.output(str(target))
    return pdf.page_no()


def main() -> int:
    for source in sorted(SOURCES.glob("*.txt")):
        target = HERE / f"{source.stem}.pdf"
        pages = render(source, target)
        print(f"{target.name}: {pages} pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
