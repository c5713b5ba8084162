"""Render a QC report's HTML to a PNG offline (the screenshot in docs/images/report_demo.png).

No browser is needed: WeasyPrint lays the page out (HTML/CSS -> PDF) and PyMuPDF rasterises it. Both are
documentation tools, not vfxinsert dependencies: install them in a separate venv,

    python -m venv /tmp/shot && /tmp/shot/bin/pip install weasyprint pymupdf
    /tmp/shot/bin/python scripts/report_screenshot.py shots/demo/out/report/index.html docs/images/report_demo.png

WeasyPrint runs no JavaScript and ignores ``clip-path``: the A/B wipe shows the plate and a static slider.
The PNG is scaled to 60 % and stored with a 256-colour palette to keep the repository small.
"""
from __future__ import annotations

import sys

import numpy as np
import pymupdf
import weasyprint
from PIL import Image


def main(html: str, out: str) -> None:
    css = weasyprint.CSS(string="@page { size: 2150px 3300px; margin: 0 } body { margin: 24px }")
    doc = pymupdf.open(stream=weasyprint.HTML(filename=html).write_pdf(stylesheets=[css]), filetype="pdf")
    pix = doc[0].get_pixmap(dpi=96)
    page = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, pix.n)[..., :3]
    rows = np.nonzero((page < 250).any(axis=(1, 2)))[0]
    image = Image.fromarray(page[: rows[-1] + 24])
    image = image.resize((int(image.width * 0.6), int(image.height * 0.6)), Image.LANCZOS)
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(out, optimize=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
