"""One self-contained HTML page: escaped text, tables, inline SVG figures and embedded PNGs.

Nothing on the page refers to a network address or another file: figures are
SVG elements written into the page, images are ``data:`` URIs, the style sheet
is inline, and there is no script. So the file opens offline, can be mailed,
and renders the same in any browser.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["Page"]

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 1.5em 2em; color: #1d1d1f; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
h3 { margin-bottom: 0.3em; } .meta { color: #555; } .missing { color: #a33; }
pre { background: #f6f6f8; padding: 0.8em; overflow-x: auto; font-size: 12.5px; line-height: 1.35; }
table { border-collapse: collapse; margin: 0.6em 0; } td, th { border: 1px solid #ddd; padding: 3px 8px;
       text-align: left; vertical-align: top; font-size: 13px; } th { background: #f0f0f3; }
figure { margin: 0.8em 0; } figure svg { max-width: 100%; height: auto; } figcaption { color: #555; }
.grid { display: flex; flex-wrap: wrap; gap: 1em; } .grid figure { flex: 1 1 480px; }
.pass { color: #176f2c; } .warn { color: #9a6700; } .fail { color: #b42318; font-weight: 600; }
.skip { color: #777; } img { max-width: 100%; }
"""


class Page:
    """An HTML page built section by section; :meth:`write` saves it as one file."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = []
        self.figures = 0

    def heading(self, text: str, level: int = 2, anchor: str | None = None) -> None:
        ident = f' id="{html.escape(anchor)}"' if anchor else ""
        self.parts.append(f"<h{level}{ident}>{html.escape(text)}</h{level}>")

    def text(self, text: str, cls: str | None = None) -> None:
        klass = f' class="{cls}"' if cls else ""
        self.parts.append(f"<p{klass}>{html.escape(text)}</p>")

    def pre(self, text: str) -> None:
        self.parts.append(f"<pre>{html.escape(text)}</pre>")

    def details(self, summary: str, text: str) -> None:
        """A folded block of preformatted text (a resolved config): one click opens it, no script needed."""
        self.parts.append(f"<details><summary>{html.escape(summary)}</summary><pre>{html.escape(text)}</pre></details>")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], classes: Sequence[str] = ()) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = []
        for i, row in enumerate(rows):
            cls = f' class="{classes[i]}"' if i < len(classes) and classes[i] else ""
            body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")

    def figure(self, ax: Any, caption: str, kind: str) -> None:
        """``ax``'s whole figure as inline SVG, marked ``data-figure=kind`` (tests and readers find it)."""
        import matplotlib

        buffer = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "twinrun"}):  # text as text; stable ids
            ax.figure.savefig(buffer, format="svg", metadata={"Date": None})
        svg = buffer.getvalue()
        svg = svg[svg.index("<svg") :]  # drop the XML prolog and DOCTYPE: the page is HTML
        self.figures += 1
        self.parts.append(
            f'<figure data-figure="{html.escape(kind)}">{svg}<figcaption>{html.escape(caption)}</figcaption></figure>'
        )

    def image(self, path: str | Path, caption: str) -> bool:
        """A PNG file embedded as a data URI; ``False`` (and nothing added) when the file is gone."""
        p = Path(path)
        if not p.is_file():
            return False
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        self.figures += 1
        self.parts.append(
            f'<figure data-figure="image"><img alt="{html.escape(caption)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}</figcaption>'
            "</figure>"
        )
        return True

    def open_grid(self) -> None:
        self.parts.append('<div class="grid">')

    def close_grid(self) -> None:
        self.parts.append("</div>")

    def render(self) -> str:
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head><body>"
            + "\n".join(self.parts)
            + "</body></html>\n"
        )

    def write(self, path: str | Path) -> Path:
        from twinrun._atomic import atomic_write

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(target, self.render().encode("utf-8"))
