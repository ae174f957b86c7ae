"""Render one partner's Summary page to ``reports/print/summary-page.png``: the bakery's, from
the month of ``tests.print.month``, printed by LibreOffice and rasterised by pdftoppm at 80 dpi.

Run as ``python -m tests.print.render_summary``; it needs soffice and pdftoppm.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from tests.print.month import to_pdf, write_month

REPO: Final = Path(__file__).resolve().parents[2]
OUT: Final = REPO / "reports" / "print" / "summary-page.png"
PARTY: Final = "baeckerei-schmidt"


def render(out: Path = OUT) -> Path:
    """The first page of the bakery's workbook (its Summary) as a PNG at ``out``."""
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm is not None, "pdftoppm not found: install poppler-utils"
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        (workbook,) = [p for p in write_month(folder / "workbooks") if p.stem.endswith(PARTY)]
        (pdf,) = to_pdf([workbook], folder / "pdf")
        stem = folder / "page"
        subprocess.run(
            [pdftoppm, "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf), stem],
            check=True,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(stem.with_suffix(".png"), out)
    return out


if __name__ == "__main__":
    print(render().relative_to(REPO))
