"""netron-paddle-pir: a Netron reader for Paddle PIR JSON models and a local viewer command.

The reader is JavaScript (``web/``), served by :mod:`netron_paddle_pir.server` next to the pip
``netron`` app. Neither the reader nor the launcher needs Paddle; only the signature-table
generator (:mod:`netron_paddle_pir.signatures`) and the corpus builder
(:mod:`netron_paddle_pir.corpus`) do.
"""

__version__ = "0.4.4"

from .server import Viewer, netron_dir  # noqa: E402

__all__ = ["Viewer", "netron_dir", "__version__"]
