"""paddle-op-migrator: census, verdicts and patches that retire legacy fluid operators into PHI.

``scan``, ``plan``, ``apply`` and ``verify`` read a Paddle *source checkout* and need no Paddle
installation. Only ``audit-wheel`` (and the optional compiler check of ``verify``) need an
installed ``paddlepaddle`` or ``paddlepaddle-gpu`` wheel.
"""

__version__ = "0.4.0"

from .lists import ListEntry, load_list  # noqa: E402
from .planner import plan  # noqa: E402
from .scanner import scan  # noqa: E402

__all__ = ["ListEntry", "__version__", "load_list", "plan", "scan"]
