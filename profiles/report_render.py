"""Render report sections to self-contained HTML (plotly.js inlined once, no CDN) or Markdown."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass
class Table:
    caption: str
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    title: str
    blocks: list[Union[str, Table, Any]] = field(default_factory=list)  # paragraph | Table | plotly Figure


_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}caption{text-align:left;font-weight:600;padding:4px 0}
.predicted{color:#7a4b00}"""


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    cls = ' class="predicted"' if "predicted" in t.caption.lower() else ""
    return f"<table{cls}><caption>{html.escape(t.caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_block(block: Any, state: dict[str, bool]) -> str:
    if isinstance(block, str):
        return f"<p>{html.escape(block)}</p>"
    if isinstance(block, Table):
        return _html_table(block) if block.rows else f"<p><em>{html.escape(block.caption)}: none.</em></p>"
    first = not state["plotly"]  # inline plotly.js with the first figure only; later ones reuse it
    state["plotly"] = True
    return block.to_html(full_html=False, include_plotlyjs=True if first else False, config={"displaylogo": False})


def render_html(title: str, sections: list[Section]) -> str:
    state = {"plotly": False}
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        parts.extend(_html_block(b, state) for b in sec.blocks)
    parts.append("</body></html>")
    return "\n".join(parts)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(t: Table) -> str:
    if not t.rows:
        return f"*{t.caption}: none.*"
    lines = [f"**{t.caption}**", "", "| " + " | ".join(map(_md_cell, t.headers)) + " |",
             "|" + "|".join("---" for _ in t.headers) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
    return "\n".join(lines)


def render_markdown(title: str, sections: list[Section]) -> str:
    parts = [f"# {title}"]
    for sec in sections:
        parts.append(f"## {sec.title}")
        for b in sec.blocks:
            if isinstance(b, str):
                parts.append(b)
            elif isinstance(b, Table):
                parts.append(_md_table(b))
            else:
                parts.append(f"*(interactive figure: {b.layout.title.text or 'plot'}, in the HTML report)*")
    return "\n\n".join(parts) + "\n"
