"""The month's workbooks printed by LibreOffice headless: each Summary is one page, one page
wide, on A4 in its orientation, with its rightmost column on it.

Without the fit-to-width setting LibreOffice prints the Summary's columns at full size, and
the last of them go to a page of their own: the page count and the header text below catch it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Final

import pytest

from tests.print.month import to_pdf, write_month

A4_PORTRAIT: Final = (595, 842)
"""An A4 page in points (210 x 297 mm), rounded."""
SUMMARY_FOOTER: Final = re.compile(r"^\s*Summary\s+Page \d+ of \d+\s*$", re.MULTILINE)
"""The footer of a Summary page: the sheet's name, then "Page n of m"."""


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The month's workbooks as PDFs, by party."""
    folder = tmp_path_factory.mktemp("print")
    pdfs = to_pdf(write_month(folder / "workbooks"), folder / "pdf")
    return {pdf.stem.removeprefix("statement-2026-11-"): pdf for pdf in pdfs}


def pages(pdf: Path) -> list[str]:
    """The text of each page, laid out as printed (``pdftotext -layout``)."""
    assert shutil.which("pdftotext"), "pdftotext not found: install poppler-utils"
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    return text.split("\f")[:-1]


def page_size(pdf: Path, page: int) -> tuple[int, int]:
    info = subprocess.run(
        ["pdfinfo", "-f", str(page), "-l", str(page), str(pdf)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = re.search(rf"Page\s+{page} size:\s+([\d.]+) x ([\d.]+) pts", info)
    assert found, info
    return round(float(found[1])), round(float(found[2]))


# party, orientation, the header of the Summary's rightmost column, a figure of the page
SUMMARIES: Final = [
    # Bäckerei: redemption 18,250 x 0.0085 = 155.12 (155.125, half to even) and 52,730 x
    # 0.0080 = 421.84; issue 40,930 x 0.0100 = 409.30 and 36,825 x 0.0100 = 368.25: a net
    # of 576.96 - 777.55 = -200.59, which reads (200.59).
    ("baeckerei-schmidt", "portrait", "Amount (EUR)", "(200.59)"),
    ("tankstelle-nord", "portrait", "Amount (EUR)", "Tankstelle Nord AG"),
    ("shopwelt", "portrait", "Amount (EUR)", "Shopwelt Online GmbH"),
    ("coalition", "landscape", "Who pays whom", "(200.59)"),
]


@pytest.mark.parametrize(("party", "orientation", "rightmost", "figure"), SUMMARIES)
def test_each_summary_prints_on_one_page_one_page_wide(
    printed: dict[str, Path], party: str, orientation: str, rightmost: str, figure: str
) -> None:
    pdf = printed[party]
    texts = pages(pdf)
    summary = [number for number, text in enumerate(texts, 1) if SUMMARY_FOOTER.search(text)]
    assert summary == [1], f"{pdf.name}: the Summary is on pages {summary}"
    first = texts[0]
    assert rightmost in first, f"{pdf.name}: {rightmost!r} is not on the Summary's page"
    assert figure in first, f"{pdf.name}: {figure!r} is not on the Summary's page"
    width, height = A4_PORTRAIT
    expected = (width, height) if orientation == "portrait" else (height, width)
    assert page_size(pdf, 1) == expected, f"{pdf.name}: not A4 {orientation}"
