"""The frozen VAE encoder of training, run by Paddle Inference with oneDNN.

Training encodes images without gradients through a VAE that never changes, so the encoder
can be exported once and run by Paddle Inference. Paddle 3.3's dygraph CPU convolutions run at
about half torch's speed; the predictor with oneDNN enabled runs the same encoder in about 40 %
of the dygraph time (see the README's training-speed section for the measurement) and lands
within a few float32 ulps of it (oneDNN sums the convolutions in another order).

oneDNN pays a set-up cost per operator and run that its faster convolutions win back only on
larger images: the tiny test VAE took 3.7 ms with oneDNN against 2.9 ms without it (and 3.9 ms
in dygraph) at 32x32, 5.7 against 7.2 ms at 48x48 and 21.5 against 50 ms at 128x128. So the
predictor enables oneDNN for images of at least ``ONEDNN_MIN_PIXELS`` pixels (the training
resolution squared, given as ``resolution``); below that it runs Paddle's own CPU kernels, which
give the dygraph encode's values exactly and still skip its per-op Python dispatch.

``VaeEncoder(vae, backend, dtype, resolution)`` offers ``latent_dist(pixels)``, which returns what
``vae.encode(pixels).latent_dist`` returns (ppdiffusers' ``DiagonalGaussianDistribution``
built from the encoder's moments). ``backend="eager"`` is that call itself; ``"inference"``
exports the encoder (and ``quant_conv``) to a folder made with ``tempfile.mkdtemp``, loads it
into a predictor, and deletes that folder. ``"auto"`` takes ``"inference"`` for a float32 VAE on
the CPU when Paddle was built with oneDNN and the VAE does not tile, and falls back to
``"eager"`` (with a warning) if the export fails.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import warnings

BACKENDS = ("auto", "inference", "eager")
ONEDNN_MIN_PIXELS = 48 * 48


def _threads() -> int:
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else (os.cpu_count() or 1)


class VaeEncoder:
    """``latent_dist(pixels)`` of a frozen VAE, by dygraph or by a oneDNN predictor."""

    def __init__(
        self, vae, backend: str = "auto", dtype: str = "float32", resolution: int | None = None
    ):
        import paddle

        if backend not in BACKENDS:
            raise ValueError(f"VAE encode backend {backend!r}: expected one of {BACKENDS}")
        self.paddle, self.vae = paddle, vae
        self.predictor = None
        self.export_seconds = None
        self.onednn = resolution is None or resolution * resolution >= ONEDNN_MIN_PIXELS
        usable, why = self._inference_usable(dtype)
        if backend == "inference" and not usable:
            raise ValueError(f"VAE encode backend 'inference': {why}")
        if backend == "eager" or not usable:
            self.backend = "eager"
            return
        try:
            self._build()
            self.backend = "inference"
        except Exception as exc:  # noqa: BLE001 - the eager path is always there
            if backend == "inference":
                raise
            warnings.warn(
                f"exporting the VAE encoder for Paddle Inference failed ({exc}); "
                "encoding with the dygraph VAE",
                RuntimeWarning,
                stacklevel=2,
            )
            self.backend = "eager"

    def _inference_usable(self, dtype: str) -> tuple[bool, str]:
        paddle = self.paddle
        if dtype != "float32":
            return False, f"the VAE runs in {dtype} (the predictor path is float32 only)"
        if "cpu" not in str(paddle.get_device()).lower():
            return False, "Paddle's device is not the CPU"
        if self.onednn and not paddle.base.core.is_compiled_with_mkldnn():
            return False, "this Paddle build has no oneDNN"
        if getattr(self.vae, "use_tiling", False):
            return False, "the VAE encodes in tiles (enable_tiling)"
        return True, ""

    def _build(self):
        paddle = self.paddle

        from ._paddle import native_stdout_to_stderr
        from ._predictor import Settings, create_predictor

        vae = self.vae

        class _Moments(paddle.nn.Layer):
            def __init__(self):
                super().__init__()
                self.encoder = vae.encoder
                self.quant_conv = getattr(vae, "quant_conv", None)

            def forward(self, pixels):
                h = self.encoder(pixels)
                return self.quant_conv(h) if self.quant_conv is not None else h

        start = time.perf_counter()
        folder = tempfile.mkdtemp(prefix="ppflux-vae-encoder-")
        try:
            layer = _Moments()
            was_training = vae.training
            layer.eval()
            spec = paddle.static.InputSpec([None, 3, None, None], "float32", "pixels")
            prefix = os.path.join(folder, "encoder")
            with native_stdout_to_stderr():
                paddle.jit.save(layer, prefix, input_spec=[spec])
            if was_training:
                vae.train()
            settings = Settings(onednn=self.onednn, threads=_threads())
            with native_stdout_to_stderr():
                self.predictor = create_predictor(prefix, settings)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self._input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self._output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])
        self.export_seconds = time.perf_counter() - start

    def moments(self, pixels):
        """The encoder's output (mean and log-variance stacked on the channel axis)."""
        paddle = self.paddle
        if self.backend == "eager":
            return self.vae.encode(pixels).latent_dist.parameters
        array = pixels.numpy()
        self._input.reshape(list(array.shape))
        self._input.copy_from_cpu(array)
        self.predictor.run()
        return paddle.to_tensor(self._output.copy_to_cpu())

    def latent_dist(self, pixels):
        """What ``vae.encode(pixels).latent_dist`` returns."""
        if self.backend == "eager":
            return self.vae.encode(pixels).latent_dist
        # the distribution class the VAE's own module builds its posterior with
        module = sys.modules[type(self.vae).__module__]
        return module.DiagonalGaussianDistribution(self.moments(pixels))
