"""Image preprocessing and prompts, exactly as the original GOT-OCR2.0 builds them.

Works without paddle (numpy + Pillow only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ._errors import UserError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_PIXELS = 16384 * 16384  # larger images are refused (decompression bombs, absurd scans)
COLORS = ("red", "green", "blue")

# the HF-remote chat()/chat_crop() system line: the triple-quoted literal keeps 8 spaces
SYSTEM_CHAT = "<|im_start|>system\n        You should follow the instructions carefully and explain your answers in detail."
# the repository demo / training template (conv_mpt) has no indentation
SYSTEM_TRAIN = "<|im_start|>system\nYou should follow the instructions carefully and explain your answers in detail."
ROLE_USER = "<|im_start|>user\n"
ROLE_ASSISTANT = "<|im_start|>assistant\n"
SEP = "<|im_end|>"


class InputError(UserError, ValueError):
    """Bad user input (image, box, colour, data): the message names the file and the problem."""

    def __init__(self, problem: str, path=None):
        super().__init__(problem, path)


# --------------------------------------------------------------------------- images
def load_image(path_or_image) -> Image.Image:
    if isinstance(path_or_image, Image.Image):
        image, name = path_or_image, "<image>"
    else:
        name = str(path_or_image)
        p = Path(name)
        if not p.is_file():
            raise InputError(f"{name}: no such file")
        if p.stat().st_size == 0:
            raise InputError(f"{name}: empty file")
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        try:
            with Image.open(p) as opened:
                opened.load()
                image = opened.convert("RGB") if opened.mode != "RGB" else opened.copy()
        except Image.DecompressionBombError as exc:
            raise InputError(f"{name}: image too large ({exc})") from exc
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise InputError(f"{name}: not a readable image ({exc})") from exc
    w, h = image.size
    if w == 0 or h == 0:
        raise InputError(f"{name}: empty image ({w}x{h})")
    if w * h > MAX_PIXELS:
        raise InputError(f"{name}: image too large ({w}x{h} > {MAX_PIXELS} pixels)")
    return image.convert("RGB") if image.mode != "RGB" else image


def normalize(image: Image.Image, size: int = 1024) -> np.ndarray:
    """Resize (PIL bicubic) to size x size, /255, CLIP mean/std -> float32 CHW."""
    image = image.convert("RGB") if image.mode != "RGB" else image
    arr = np.asarray(image.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255.0
    arr = (arr - np.array(CLIP_MEAN, np.float32)) / np.array(CLIP_STD, np.float32)
    return arr.transpose(2, 0, 1).copy()


def crop_grid(
    width: int, height: int, min_num: int = 1, max_num: int = 6, image_size: int = 1024
) -> tuple[int, int]:
    """The original's grid choice: set of (i, j), stable sort by area, closest aspect ratio,
    ties go to the later grid when the image is large enough."""
    ratios = set(
        (i, j)
        for n in range(min_num, max_num + 1)
        for i in range(1, n + 1)
        for j in range(1, n + 1)
        if min_num <= i * j <= max_num
    )
    ratios = sorted(ratios, key=lambda x: x[0] * x[1])
    aspect = width / height
    best_diff, best = float("inf"), (1, 1)
    area = width * height
    for r in ratios:
        diff = abs(aspect - r[0] / r[1])
        if diff < best_diff:
            best_diff, best = diff, r
        elif diff == best_diff and area > 0.5 * image_size * image_size * r[0] * r[1]:
            best = r
    return best


def dynamic_preprocess(
    image: Image.Image,
    min_num: int = 1,
    max_num: int = 6,
    image_size: int = 1024,
    use_thumbnail: bool = True,
) -> list[Image.Image]:
    """Up to ``max_num`` tiles in row-major order, plus the global view when there are several."""
    gi, gj = crop_grid(*image.size, min_num=min_num, max_num=max_num, image_size=image_size)
    tw, th = image_size * gi, image_size * gj
    resized = image.resize((tw, th))
    tiles = []
    for k in range(gi * gj):
        x, y = (k % gi) * image_size, (k // gi) * image_size
        tiles.append(resized.crop((x, y, x + image_size, y + image_size)))
    if use_thumbnail and len(tiles) != 1:
        tiles.append(image.resize((image_size, image_size)))
    return tiles


# --------------------------------------------------------------------------- prompts
def parse_box(box, width: int, height: int) -> list[int]:
    """'x1,y1,x2,y2' (or 2 numbers, as the original accepts) in pixels -> 0..1000 ints."""
    text = box
    if isinstance(box, str):
        parts = [p for p in box.strip().strip("[]()").replace(" ", "").split(",") if p != ""]
        try:
            box = [float(p) for p in parts]
        except ValueError:
            raise InputError(f"malformed box {text!r}: expected numbers x1,y1,x2,y2") from None
    box = list(box)
    if len(box) not in (2, 4):
        raise InputError(f"malformed box {text!r}: expected 4 numbers x1,y1,x2,y2 (or 2)")
    if any(not np.isfinite(v) or v < 0 for v in box):
        raise InputError(f"malformed box {text!r}: coordinates must be finite and >= 0")
    if len(box) == 4 and (box[2] <= box[0] or box[3] <= box[1]):
        raise InputError(f"malformed box {text!r}: needs x2 > x1 and y2 > y1")
    if any(v > (width if i % 2 == 0 else height) for i, v in enumerate(box)):
        raise InputError(f"box {text!r} lies outside the {width}x{height} image")
    return [
        int(v / width * 1000) if i % 2 == 0 else int(v / height * 1000) for i, v in enumerate(box)
    ]


def build_query(
    ocr_type: str = "ocr",
    box: list[int] | None = None,
    color: str | None = None,
    crop: bool = False,
    multi_page: bool = False,
) -> str:
    """The text after ``</img>\\n``, as chat() / chat_crop() of the original build it."""
    if ocr_type not in ("ocr", "format"):
        raise InputError(f"unknown OCR type {ocr_type!r} (ocr, format)")
    if color is not None and color not in COLORS:
        raise InputError(f"unknown color {color!r} (one of {', '.join(COLORS)})")
    if multi_page:
        if box is not None or color is not None:
            raise InputError("box/color prompts are single-image modes, not multi-page")
        return "OCR with format across multi pages: "
    if crop:
        if box is not None or color is not None:
            raise InputError("box/color prompts are single-image modes, not crop mode")
        return (
            "OCR with format upon the patch reference: "
            if ocr_type == "format"
            else "OCR upon the patch reference: "
        )
    base = "OCR with format: " if ocr_type == "format" else "OCR: "
    if color:  # the original lets colour win over a box
        return "[" + color + "]" + " " + base
    if box is not None:
        return str(list(box)) + " " + base
    return base


def build_prompt(
    query: str, num_views: int = 1, image_seq_length: int = 256, system: str = SYSTEM_CHAT
) -> str:
    """MPT conversation: system, user turn with one <img>...</img> block, open assistant turn."""
    image = "<img>" + "<imgpad>" * (image_seq_length * num_views) + "</img>"
    return system + SEP + ROLE_USER + image + "\n" + query + SEP + ROLE_ASSISTANT


def postprocess(text: str) -> str:
    """Strip, drop a trailing <|im_end|>, strip again (a trailing <|endoftext|> survives, as upstream)."""
    text = text.strip()
    if text.endswith(SEP):
        text = text[: -len(SEP)]
    return text.strip()
