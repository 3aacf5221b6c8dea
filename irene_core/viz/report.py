"""``irene report``: the viz page as one self-contained HTML file (no server, no network)."""

from __future__ import annotations

import base64
import hashlib
import html
import json
from importlib.resources import files
from typing import Any

from irene_core.tree.per_token import per_token
from irene_core.tree.schema import TreeRecord
from irene_core.viz.schemas import EnergyView

_STYLE_TAG = '<link rel="stylesheet" href="static/style.css">'
_SCRIPT_TAG = '<script src="static/app.js" defer></script>'
#: Scripts of the served page only: the shared helpers are inlined with app.js, the what-if view needs a server.
_SERVER_SCRIPT_TAGS = ('<script src="static/dom.js" defer></script>\n',
                       '<script src="static/whatif.js" defer></script>\n')


def _asset(name: str) -> str:
    return (files("irene_core.viz") / "web" / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def record_view(record: TreeRecord) -> EnergyView:
    """A record as the page shows it; ``meta['prediction']`` (written by the predictor) says what predicted it."""
    meta = record.meta
    found = meta.get("prediction")
    prediction: dict[str, Any] = found if isinstance(found, dict) else {}
    return EnergyView(
        **record.model_dump(exclude={"root"}), root=record.root, source="file",
        node_count=sum(1 for _ in record.root.walk()), per_token=per_token(record),
        predictor=_predictor_label(prediction), hardware=prediction.get("hardware"),
    )


def _predictor_label(prediction: dict[str, Any]) -> str | None:
    parts = [f"{k}={prediction[k]}" for k in ("features", "aggregator") if prediction.get(k)]
    return f"predictor ({', '.join(parts)})" if parts else None


def render_html(records: list[TreeRecord], title: str) -> str:
    """One HTML file with the page's own CSS and JS inlined and ``records`` embedded as JSON.

    A Content-Security-Policy allows only these inline blocks (by hash) and no network access at all.
    """
    page, style, script = _asset("index.html"), _asset("style.css"), _asset("dom.js") + "\n" + _asset("app.js")
    if _STYLE_TAG not in page or not all(tag in page for tag in (_SCRIPT_TAG, *_SERVER_SCRIPT_TAGS)):
        raise RuntimeError("irene_core/viz/web/index.html lost its style or script tags")
    for tag in _SERVER_SCRIPT_TAGS:
        page = page.replace(tag, "", 1)
    if "</style" in style.lower() or "</script" in script.lower():
        raise RuntimeError("an inlined asset contains a closing tag")
    views = [record_view(r).model_dump(mode="json") for r in records]
    payload = json.dumps({"title": title, "records": views}, separators=(",", ":"), allow_nan=False)
    data = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    csp = (
        f"default-src 'none'; script-src '{_sha256(script)}'; style-src '{_sha256(style)}'; img-src data:; "
        "connect-src 'none'; form-action 'none'; base-uri 'none'"
    )
    page = page.replace(
        '<meta charset="utf-8">',
        f'<meta charset="utf-8">\n<meta http-equiv="Content-Security-Policy" content="{csp}">',
        1,
    )
    page = page.replace("<title>IrEne-viz</title>", f"<title>{html.escape(title)}</title>", 1)
    page = page.replace(_STYLE_TAG, f"<style>{style}</style>", 1)
    return page.replace(
        _SCRIPT_TAG, f'<script type="application/json" id="irene-data">{data}</script>\n<script>{script}</script>', 1
    )
