"""End-to-end OCR: images -> prompt + pixel values -> greedy decoding -> text."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .processing import (
    SYSTEM_CHAT,
    InputError,
    build_prompt,
    build_query,
    dynamic_preprocess,
    load_image,
    normalize,
    parse_box,
    postprocess,
)


@dataclass
class PreparedInput:
    prompt: str
    input_ids: list
    pixel_values: np.ndarray  # [views, 3, S, S]
    no_repeat_ngram_size: int


class GotOcrPipeline:
    """``GotOcrPipeline.from_pretrained(folder).ocr("page.png", ocr_type="format")``."""

    def __init__(self, model, tokenizer):
        self.model = model
        self.tokenizer = tokenizer
        self.config = model.config

    @classmethod
    def from_pretrained(cls, folder):
        from .modeling_got_ocr2 import GotOcr2ForConditionalGeneration
        from .tokenizer import GotOcrTokenizer

        model = GotOcr2ForConditionalGeneration.from_pretrained(folder)
        return cls(model, GotOcrTokenizer.from_pretrained(folder, model.config))

    @classmethod
    def from_inference(cls, folder, mode: str = "auto", threads: int = 1, verbose: bool = False):
        """Run a ``ppgotocr export`` folder through Paddle Inference (checked at start-up)."""
        from .export import InferenceModel
        from .tokenizer import GotOcrTokenizer

        model = InferenceModel(folder, mode=mode, threads=threads, verbose=verbose)
        return cls(model, GotOcrTokenizer.from_pretrained(folder, model.config))

    # ------------------------------------------------------------------ inputs
    def prepare(
        self,
        image,
        ocr_type: str = "ocr",
        box=None,
        color: str | None = None,
        crop: bool = False,
        multi_page: bool = False,
        system: str = SYSTEM_CHAT,
        no_repeat_ngram_size: int | None = None,
    ) -> PreparedInput:
        size = self.config.vision.image_size
        if multi_page:
            pages = image if isinstance(image, (list, tuple)) else [image]
            if not pages:
                raise InputError("multi-page OCR needs at least one page")
            views = [load_image(p) for p in pages]
        else:
            if isinstance(image, (list, tuple)):
                raise InputError("several images for one prompt need multi_page=True")
            img = load_image(image)
            views = dynamic_preprocess(img, image_size=size) if crop else [img]
        norm_box = None
        if box is not None:
            if multi_page or crop:
                raise InputError("a box only applies to single-image OCR")
            norm_box = parse_box(box, *views[0].size)
        query = build_query(ocr_type, norm_box, color, crop=crop, multi_page=multi_page)
        prompt = build_prompt(query, len(views), self.config.image_seq_length, system)
        pixels = np.stack([normalize(v, size) for v in views])
        if no_repeat_ngram_size is None:  # chat() bans 20-grams; chat_crop() does not
            no_repeat_ngram_size = 0 if (crop or multi_page) else 20
        return PreparedInput(prompt, self.tokenizer.encode(prompt), pixels, no_repeat_ngram_size)

    # ------------------------------------------------------------------ decoding
    def _gen_config(self, ngram: int, max_new_tokens: int, stop_strings=()):
        from .generation import GenerationConfig

        eos = [i for i in {self.config.eos_token_id, self.tokenizer.eos_id} if i is not None]
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            no_repeat_ngram_size=ngram,
            eos_token_ids=eos,
            stop_token_ids_after_first=[self.tokenizer.im_end_id],
            stop_strings=list(stop_strings),
            pad_token_id=self.config.pad_token_id or 0,
        )

    def generate_ids(
        self, prepared: list[PreparedInput], max_new_tokens: int = 4096, stop_strings=()
    ) -> list[list[int]]:
        import paddle

        from .generation import greedy_generate

        ngrams = {p.no_repeat_ngram_size for p in prepared}
        if len(ngrams) != 1:
            raise ValueError("one batch must share no_repeat_ngram_size")
        gen = self._gen_config(ngrams.pop(), max_new_tokens, stop_strings)
        with paddle.no_grad():
            feats = [
                self.model.get_image_features(paddle.to_tensor(p.pixel_values)) for p in prepared
            ]
        feats = paddle.concat(feats, axis=0)
        return greedy_generate(
            self.model, [p.input_ids for p in prepared], feats, gen, self.tokenizer
        )

    def decode(self, ids) -> str:
        return postprocess(self.tokenizer.decode(ids))

    def ocr(
        self,
        image,
        ocr_type: str = "ocr",
        box=None,
        color=None,
        crop=False,
        multi_page=False,
        max_new_tokens: int = 4096,
        no_repeat_ngram_size=None,
        stop_strings=(),
        system: str = SYSTEM_CHAT,
    ) -> str:
        p = self.prepare(
            image,
            ocr_type,
            box,
            color,
            crop,
            multi_page,
            system=system,
            no_repeat_ngram_size=no_repeat_ngram_size,
        )
        return self.decode(self.generate_ids([p], max_new_tokens, stop_strings)[0])

    def ocr_batch(
        self,
        images,
        ocr_type: str = "ocr",
        max_new_tokens: int = 4096,
        no_repeat_ngram_size=None,
        batch_size: int = 8,
        progress: bool = False,
        system: str = SYSTEM_CHAT,
    ) -> list[str]:
        """Plain/format OCR of many images, left-padded batches; each row equals its single run."""
        prepared = [
            self.prepare(im, ocr_type, no_repeat_ngram_size=no_repeat_ngram_size, system=system)
            for im in images
        ]
        chunks = [prepared[i : i + batch_size] for i in range(0, len(prepared), batch_size)]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(prepared), desc="ocr", unit="page")
        texts = []
        for chunk in chunks:
            texts.extend(self.decode(ids) for ids in self.generate_ids(chunk, max_new_tokens))
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        return texts
