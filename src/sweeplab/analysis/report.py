"""The analysis report: one document model rendered as Markdown and as self-contained HTML.

A report is a list of blocks (headings, paragraphs, bullet lists, tables, figures). The
same blocks render to ``report.md`` (figures by relative path, tables as Markdown) and to
``report.html`` (figures embedded as base64 PNG, so the file can be mailed or archived
alone), so the two never disagree.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sweeplab.core.experiment import atomic_write_text


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A table: a header row and string cells; ``caption`` goes above it."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A figure file (PNG; a PDF twin beside it is linked) relative to the report."""

    path: str
    caption: str


Block = Heading | Paragraph | Bullets | Table | Figure


@dataclass
class Report:
    """A titled list of blocks."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> Report:
        self.blocks.extend(blocks)
        return self


_INLINE = (
    r"[\\`*~]"                             # code spans, emphasis, strikethrough, escapes
    r"|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])"  # an underscore that can delimit emphasis
    r"|<(?=[A-Za-z/!?])"                    # raw HTML and autolinks
    r"|&(?=#?[0-9A-Za-z]+;)"                # character references
)
_TEXT = re.compile(_INLINE + r"|\](?=[(\[:])")  # the ] of links, references, definitions
_LABEL = re.compile(_INLINE + r"|[\[\]]")       # inside [...]: every bracket
_INDENT = re.compile(r"^[ \t]+", re.MULTILINE)
_LINE_START = re.compile(r"^(?:([#+-](?=[ \t]|$)|>|[-=](?=[-= \t]*$))"
                         r"|(\d+)([.)])(?=[ \t]|$))", re.MULTILINE)


def md_text(text: object, *, label: bool = False, block: bool = True) -> str:
    """``text`` as Markdown that shows exactly these characters (CommonMark + GitHub).

    Everything that could start formatting is backslash-escaped: ``* ` ~ \\``, an
    underscore not inside a word (``a_b`` stays, ``_a_`` would be italic), ``<`` before
    a tag or autolink, ``&`` of a character reference, the ``]`` of a link (with
    ``label``, for an image's alt text, every bracket), and the start of a line that
    would open a heading, quote, list or thematic break (its indentation dropped: it
    would make a code block; ``block=False`` for a table cell, where none can open).
    The rest is left as written, so the Markdown file stays readable (``val_accuracy``,
    ``p < 0.05``).
    """
    escaped = (_LABEL if label else _TEXT).sub(lambda m: "\\" + m.group(0), str(text))
    if not block:
        return escaped
    return _LINE_START.sub(lambda m: "\\" + m.group(1) if m.group(1)
                           else f"{m.group(2)}\\{m.group(3)}", _INDENT.sub("", escaped))


def _md_line(text: object, *, label: bool = False, block: bool = True) -> str:
    """:func:`md_text` on one line, with ``|`` escaped (a list item, a table cell)."""
    return md_text(" ".join(str(text).splitlines()), label=label,
                   block=block).replace("|", "\\|")


def render_markdown(report: Report) -> str:
    """The report as Markdown (GitHub flavour); figures by relative path. Text shows as
    written (:func:`md_text`): a condition named ``a_b*c`` never turns italic."""
    out = [f"# {_md_line(report.title)}", ""]
    for block in report.blocks:
        if isinstance(block, Heading):
            out += [f"{'#' * block.level} {_md_line(block.text)}", ""]
        elif isinstance(block, Paragraph):
            out += [md_text(block.text), ""]
        elif isinstance(block, Bullets):
            out += [f"- {_md_line(item)}" for item in block.items] + [""]
        elif isinstance(block, Table):
            if block.caption:
                out += [f"*{_md_line(block.caption)}*", ""]
            out.append("| " + " | ".join(_md_line(h, block=False) for h in block.header)
                       + " |")
            out.append("|" + "|".join("---" for _ in block.header) + "|")
            out += ["| " + " | ".join(_md_line(c, block=False) for c in row) + " |"
                    for row in block.rows]
            out.append("")
        elif isinstance(block, Figure):
            pdf = Path(block.path).with_suffix(".pdf").as_posix()
            out += [
                f"![{_md_line(block.caption, label=True)}]({block.path})",
                "",
                f"*{_md_line(block.caption)}* ([pdf]({pdf}))",
                "",
            ]
    return "\n".join(out).rstrip() + "\n"


_CSS = """
body { font-family: Georgia, 'DejaVu Serif', serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1, h2, h3 { font-weight: normal; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { padding: 0.25rem 0.7rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { border-top: 2px solid #222; border-bottom: 1px solid #222; }
tbody tr:last-child td { border-bottom: 2px solid #222; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; }
figcaption, caption { font-style: italic; font-size: 0.9rem; }
caption { caption-side: top; text-align: left; padding-bottom: 0.3rem; }
"""


def render_html(report: Report, base_dir: Path) -> str:
    """The report as one self-contained HTML page (images embedded as data URIs)."""
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(report.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{esc(report.title)}</h1>",
    ]
    for block in report.blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{esc(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            out.append(f"<p>{esc(block.text)}</p>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Table):
            caption = f"<caption>{esc(block.caption)}</caption>" if block.caption else ""
            head = "".join(f"<th>{esc(h)}</th>" for h in block.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>"
                for row in block.rows
            )
            out.append(
                f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            )
        elif isinstance(block, Figure):
            data = base64.b64encode((base_dir / block.path).read_bytes()).decode("ascii")
            out.append(
                f'<figure><img src="data:image/png;base64,{data}" '
                f'alt="{esc(block.caption)}"><figcaption>{esc(block.caption)}'
                f"</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir``; return their paths."""
    md = atomic_write_text(out_dir / "report.md", render_markdown(report))
    page = atomic_write_text(out_dir / "report.html", render_html(report, out_dir))
    return md, page


def table_from_records(
    records: Sequence[dict], columns: Sequence[tuple[str, str]], caption: str = ""
) -> Table:
    """A :class:`Table` from dict records, picking ``(key, header)`` columns."""
    header = tuple(h for _, h in columns)
    rows = tuple(tuple(str(r.get(k, "")) for k, _ in columns) for r in records)
    return Table(header, rows, caption)
