"""Real inputs for the real-weight corpus, made here: rendered text, synthetic speech, drawn
scenes and faces, real sentences. Nothing is downloaded.

Each ``make_*`` returns ``{input name: array}`` with the preprocessing the model's own
package applies (normalisation, layout), so the source runtime sees what it sees in use.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np

TEXT_LINES = [
    "Invoice 2024-0117: 3 boxes of paper, 12.50 EUR each",
    "The quick brown fox jumps over the lazy dog.",
    "PaddlePaddle converts models from ONNX and PyTorch.",
    "Total due within 30 days: 37.50 EUR",
]
SENTENCES = [
    "A man is eating food.",
    "The new movie is awesome and I would watch it again with my friends.",
]
SPEECH = (
    "Voice activity detection finds the parts of a recording where somebody speaks. "
    "Between the sentences there are pauses."
)


def _font(size: int):
    from PIL import ImageFont

    for name in (
        "DejaVuSans.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "LiberationSans-Regular.ttf",
    ):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def text_page(width: int = 640, height: int = 480):
    """A white page with four lines of dark text, slightly rotated lines excluded."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), (250, 250, 246))
    draw = ImageDraw.Draw(img)
    font = _font(22)
    for i, line in enumerate(TEXT_LINES):
        draw.text((30, 40 + i * 95), line, fill=(20, 20, 30), font=font)
    return img


def text_line(text: str = TEXT_LINES[1], height: int = 48, width: int = 320):
    """One rendered text line, scaled to ``height`` and padded to ``width`` (PP-OCR rec)."""
    from PIL import Image, ImageDraw

    font = _font(32)
    probe = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    img = Image.new("RGB", (right - left + 16, bottom - top + 16), (255, 255, 255))
    ImageDraw.Draw(img).text((8 - left, 8 - top), text, fill=(0, 0, 0), font=font)
    w = min(width, max(1, round(img.width * height / img.height)))
    img = img.resize((w, height))
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    canvas.paste(img, (0, 0))
    return canvas


def scene(width: int = 320, height: int = 320, seed: int = 0):
    """A drawn outdoor scene: sky gradient, ground, a house, a tree, a person-like figure."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height)[:, None, None]
    sky = np.array([90, 150, 230]) * (1 - y) + np.array([200, 220, 250]) * y
    arr = np.broadcast_to(sky, (height, width, 3)).copy()
    arr[int(height * 0.65) :] = [70, 130, 60]
    arr += rng.normal(0, 6, arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.rectangle([40, 130, 140, 215], fill=(180, 90, 60), outline=(60, 30, 20))
    d.polygon([(30, 130), (90, 80), (150, 130)], fill=(120, 40, 40))
    d.rectangle([80, 170, 100, 215], fill=(70, 50, 30))
    d.ellipse([200, 90, 280, 170], fill=(40, 110, 40))
    d.rectangle([233, 165, 247, 215], fill=(90, 60, 30))
    d.ellipse([165, 150, 185, 170], fill=(230, 190, 160))  # a person
    d.rectangle([168, 170, 182, 205], fill=(40, 60, 160))
    d.line([168, 205, 163, 225], fill=(30, 30, 30), width=4)
    d.line([182, 205, 187, 225], fill=(30, 30, 30), width=4)
    return img.filter(ImageFilter.GaussianBlur(0.6))


def face(width: int = 200, height: int = 240):
    """A drawn face (skin oval, eyes, brows, nose, mouth, hair) on a textured background."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(1)
    bg = np.clip(rng.normal(140, 25, (height, width, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(bg)
    d = ImageDraw.Draw(img)
    cx, cy = width // 2, height // 2 + 10
    d.ellipse([cx - 62, cy - 95, cx + 62, cy + 5], fill=(60, 40, 25))  # hair
    d.ellipse([cx - 55, cy - 75, cx + 55, cy + 75], fill=(225, 180, 150))
    for dx in (-22, 22):
        d.ellipse([cx + dx - 11, cy - 22, cx + dx + 11, cy - 10], fill=(255, 255, 255))
        d.ellipse([cx + dx - 5, cy - 21, cx + dx + 5, cy - 11], fill=(50, 35, 25))
        d.line([cx + dx - 13, cy - 32, cx + dx + 13, cy - 34], fill=(70, 45, 30), width=3)
    d.polygon([(cx, cy - 8), (cx - 8, cy + 18), (cx + 8, cy + 18)], fill=(205, 150, 125))
    d.chord([cx - 22, cy + 22, cx + 22, cy + 48], 0, 180, fill=(170, 60, 60))
    return img.filter(ImageFilter.GaussianBlur(1.0))


def nchw(img, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), scale: float = 1 / 255) -> np.ndarray:
    arr = np.asarray(img, dtype=np.float32) * scale
    arr = (arr - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1)[None])


def nhwc(img, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """An RGB image as a [1, H, W, 3] float32 tensor scaled to [low, high] (TFLite models)."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return np.ascontiguousarray((arr * (high - low) + low)[None])


IMAGENET = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
HALF = dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


@lru_cache(maxsize=1)
def speech_16k() -> np.ndarray:
    """``SPEECH`` spoken by espeak-ng, resampled to 16 kHz mono float32 in [-1, 1]."""
    if not shutil.which("espeak-ng"):
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng sox)")
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "16k.wav"
        subprocess.run(["espeak-ng", "-w", str(raw), SPEECH], check=True, capture_output=True)
        if shutil.which("sox"):
            subprocess.run(
                ["sox", str(raw), "-r", "16000", "-c", "1", str(out)],
                check=True,
                capture_output=True,
            )
        else:
            out = raw
        with wave.open(str(out)) as w:
            rate = w.getframerate()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    audio = data.astype(np.float32) / 32768.0
    if rate != 16000:  # linear resampling when sox is missing
        t = np.arange(0, len(audio) * 16000 // rate) * rate / 16000
        audio = np.interp(t, np.arange(len(audio)), audio).astype(np.float32)
    return audio


@lru_cache(maxsize=8)
def spoken_int16(phrase: str, pad_s: float = 1.0) -> np.ndarray:
    """``phrase`` spoken by espeak-ng at 16 kHz as int16 samples, with ``pad_s`` seconds of
    silence before and after (how a wake word arrives in a stream)."""
    if not shutil.which("espeak-ng") or not shutil.which("sox"):
        raise RuntimeError("espeak-ng and sox are needed (apt-get install espeak-ng sox)")
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "16k.wav"
        subprocess.run(["espeak-ng", "-w", str(raw), phrase], check=True, capture_output=True)
        subprocess.run(
            ["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)]
            + ["pad", str(pad_s), str(pad_s)],
            check=True,
            capture_output=True,
        )
        with wave.open(str(out)) as w:
            return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).copy()


def speech_chunks(count: int, size: int, context: int = 0) -> np.ndarray:
    """``count`` consecutive windows of ``context + size`` samples from the speech middle."""
    audio = speech_16k()
    start = len(audio) // 3
    rows = [audio[start + i * size - context : start + (i + 1) * size] for i in range(count)]
    return np.stack(rows).astype(np.float32)


def tokenize(tokenizer_json: Path, sentences=SENTENCES) -> dict[str, np.ndarray]:
    """BERT inputs for ``sentences``, padded to the longest (padding exercises pad rows)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(list(sentences))
    return {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
    }
