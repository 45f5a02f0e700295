"""``python -m ppgotocr`` (also what ``python -m paddle.distributed.launch`` can run)."""

import sys

from .cli import main

sys.exit(main())
