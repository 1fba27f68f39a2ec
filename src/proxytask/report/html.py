"""The page of :mod:`proxytask.report.page` as HTML: one self-contained file, or a live page.

Charts are drawn by plotly.js (the copy inside the ``plotly`` Python package, inlined: the
report needs no network and nothing outside its file). The same small script renders the
report and the dashboard: the report embeds the page JSON; the dashboard's page fetches
``api/page`` every ``poll_ms`` and re-renders (``Plotly.react`` keeps zoom and hover state,
tables keep their sort order).
"""

from __future__ import annotations

import html
import importlib.resources
import json
from typing import Any

from proxytask.core.errors import UsageError

__all__ = ["plotly_js", "render_html"]


def plotly_js() -> str:
    """The plotly.js bundle shipped in the ``plotly`` package (raise UsageError without it)."""
    try:
        path = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
        return path.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise UsageError(
            f"the report needs the plotly package for its charts, got {exc}. Install it: "
            "pip install plotly."
        ) from None


def _static(name: str) -> str:
    return (importlib.resources.files("proxytask.report") / "static" / name).read_text("utf-8")


def _json_for_script(value: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</`` can close it early)."""
    return json.dumps(value, allow_nan=False, default=str).replace("</", "<\\/")


def _clean(value: Any) -> Any:
    """NaN and infinities as null, recursively (JSON has no NaN)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def render_html(
    page: dict[str, Any] | None,
    *,
    live: bool = False,
    poll_ms: int = 2000,
    plotly_src: str | None = None,
) -> str:
    """The HTML document for ``page``.

    Without ``live`` it is self-contained: plotly.js and the page inlined. With ``live`` the
    script polls ``api/page``; ``plotly_src`` then names a URL to load plotly.js from (the
    dashboard serves it) instead of inlining it.
    """
    config = {"page": _clean(page) if page is not None else None, "live": live, "poll_ms": poll_ms}
    title = html.escape(str((page or {}).get("title", "proxytask")))
    if plotly_src is None:
        plotly_tag = f"<script>{plotly_js()}</script>"
    else:
        plotly_tag = f'<script src="{html.escape(plotly_src)}"></script>'
    badge = '<span id="live" class="live">live</span>' if live else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_static('page.css')}</style>{plotly_tag}</head><body>"
        f'<header><h1 id="title">{title}</h1><div class="meta">status: <b id="status"></b>'
        f' · generated <span id="generated"></span>{badge}</div></header>'
        '<main id="content"></main>'
        f'<script type="application/json" id="proxytask-config">{_json_for_script(config)}'
        f"</script><script>{_static('page.js')}</script></body></html>\n"
    )
