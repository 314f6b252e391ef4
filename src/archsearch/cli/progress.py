"""Progress bars for the library's progress callbacks (``Run.search``, ``Run.final``)."""

from __future__ import annotations

import sys
from typing import Any


class Bars:
    """A callback ``(event, fields)`` drawing one tqdm bar per phase (off: nothing drawn,
    notes still printed)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def __call__(self, event: str, fields: dict[str, Any]) -> None:
        if event == "note":
            print(fields["text"], file=sys.stderr if self.bar is not None else sys.stdout)
            return
        if not self.enabled:
            return
        from tqdm import tqdm

        if event == "start":
            self.bar = tqdm(total=fields.get("total"), initial=fields.get("initial", 0),
                            desc=fields.get("desc"), unit=fields.get("unit", "it"),
                            dynamic_ncols=True)
            self._postfix(fields)
        elif event == "step" and self.bar is not None:
            self.bar.update(1)
            self._postfix(fields)
        elif event == "end" and self.bar is not None:
            self.bar.close()
            self.bar = None

    def _postfix(self, fields: dict[str, Any]) -> None:
        shown = {k: f"{v:.4f}" if isinstance(v, float) else v for k, v in fields.items()
                 if k in ("best", "shared_loss", "reward", "entropy") and v is not None}
        if shown:
            self.bar.set_postfix(shown)
