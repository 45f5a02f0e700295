"""Documents as page images: image files as they are, PDFs rendered page by page.

PDF pages are rendered with pypdfium2 (PDFium, the renderer of Chromium) at the resolution the
OCR mode needs, so no page is upsampled by the model's bicubic resize: plain, format and
multi-page modes resize each page to ``image_size`` squared, so the page is rendered with its
shorter side at ``image_size`` pixels; crop mode tiles the page on the original's grid, so it
is rendered large enough for every tile (``image_size`` per grid cell).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .processing import MAX_PIXELS, InputError, crop_grid, load_image

PDF_MAGIC = b"%PDF-"


@dataclass
class Page:
    """One page image and where it came from (``doc.pdf#page=3`` for a PDF page)."""

    name: str
    image: Image.Image


def is_pdf(path) -> bool:
    p = Path(path)
    if p.suffix.lower() == ".pdf":
        return True
    try:
        with open(p, "rb") as f:
            return f.read(5) == PDF_MAGIC
    except OSError:
        return False


def _render_scale(width_pt: float, height_pt: float, image_size: int, crop: bool) -> float:
    if crop:
        cols, rows = crop_grid(int(round(width_pt)), int(round(height_pt)), image_size=image_size)
        return max(cols * image_size / width_pt, rows * image_size / height_pt)
    return image_size / min(width_pt, height_pt)


def pdf_pages(
    path, image_size: int = 1024, crop: bool = False, pages: list[int] | None = None
) -> list[Page]:
    """Render the pages of a PDF (all, or the 1-based ``pages``) as RGB images."""
    import pypdfium2 as pdfium

    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path)
    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise InputError(f"not a readable PDF ({exc})", path) from None
    try:
        count = len(pdf)
        if count == 0:
            raise InputError("the PDF has no pages", path)
        wanted = list(range(1, count + 1)) if pages is None else pages
        for n in wanted:
            if not 1 <= n <= count:
                raise InputError(f"page {n} does not exist (the PDF has {count})", path)
        out = []
        for n in wanted:
            page = pdf[n - 1]
            try:
                w, h = page.get_size()
                if w <= 0 or h <= 0:
                    raise InputError(f"page {n} has no area ({w}x{h} pt)", path)
                scale = _render_scale(w, h, image_size, crop)
                if w * scale * h * scale > MAX_PIXELS:
                    raise InputError(f"page {n} is too large to render ({w}x{h} pt)", path)
                bitmap = page.render(scale=scale)
                image = bitmap.to_pil().convert("RGB")
            finally:
                page.close()
            out.append(Page(f"{path}#page={n}", image))
        return out
    finally:
        pdf.close()


def parse_pages(spec: str | None) -> list[int] | None:
    """``"1,3-5"`` -> ``[1, 3, 4, 5]``; None for all pages."""
    if spec is None:
        return None
    pages = []
    for part in spec.split(","):
        part = part.strip()
        try:
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                if b < a:
                    raise ValueError
                pages.extend(range(a, b + 1))
            else:
                pages.append(int(part))
        except ValueError:
            raise InputError(f"malformed page list {spec!r}: expected e.g. 1,3-5") from None
    if not pages or min(pages) < 1:
        raise InputError(f"malformed page list {spec!r}: pages are numbered from 1")
    return pages


def load_pages(
    inputs, image_size: int = 1024, crop: bool = False, pages: str | None = None
) -> list[Page]:
    """Every input (image file or PDF) as a list of pages, in order."""
    page_list = parse_pages(pages)
    out = []
    for item in inputs:
        if is_pdf(item):
            out.extend(pdf_pages(item, image_size, crop, page_list))
        else:
            if page_list is not None:
                raise InputError("--pages applies to PDF input only", item)
            out.append(Page(str(item), load_image(item)))
    return out
