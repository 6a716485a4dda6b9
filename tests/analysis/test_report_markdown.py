"""The Markdown report shows text exactly as written: rendered by a CommonMark parser
(markdown-it-py, with GitHub's tables and strikethrough), no paragraph, bullet, heading,
table cell or caption turns into emphasis, code, a link, HTML or another block."""

from __future__ import annotations

import random
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from sweeplab.analysis.report import (
    Bullets,
    Figure,
    Heading,
    Paragraph,
    Report,
    Table,
    md_text,
    render_markdown,
)

NASTY = [
    "a_b*c", "a_b*c beats d*e", "_lead and trail_", "**bold** and __strong__", "`code`",
    "~~struck~~ and ~one~", "[a link](http://example.com)", "[ref][x] and [x]: /url",
    "<b>html</b> <http://auto.link>", "&amp; &#65; &copy;", "# not a heading",
    "> not a quote", "- not a list", "+ nor this", "1. not ordered", "2) nor this",
    "---", "===", "    not code", "back\\slash \\*", "pipe | in text", "![img](x.png)",
    "p < 0.05 and x > 1", "val_accuracy, log_volume_c0.3", "snake_case_name_", "-0.5 change",
]
"""Text that Markdown would format if written as is."""

FORMATTING = {"em", "strong", "code", "a", "s", "del", "img", "pre", "blockquote", "ol",
              "hr", "b", "i", "h3", "h4", "h5", "h6"}


class Shown(HTMLParser):
    """What a reader sees: the text of each block element, and every tag used."""

    BLOCKS = ("p", "li", "td", "th", "h2")

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.texts: list[tuple[str, str]] = []
        self.alts: list[str] = []
        self._open: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        self.tags.append(tag)
        if tag == "img":
            self.alts.append(dict(attrs).get("alt", ""))
        if tag in self.BLOCKS:
            self._open.append((tag, []))

    def handle_endtag(self, tag):  # noqa: ANN001
        if tag in self.BLOCKS and self._open and self._open[-1][0] == tag:
            name, parts = self._open.pop()
            self.texts.append((name, " ".join("".join(parts).split())))

    def handle_data(self, data):  # noqa: ANN001
        for _, parts in self._open:
            parts.append(data)


def shown(markdown: str) -> Shown:
    parser = Shown()
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    parser.feed(md.render(markdown))
    return parser


def one_block_report(text: str) -> Report:
    return Report("t").add(Heading(text), Paragraph(text), Bullets((text, text)),
                           Table((text, "n"), ((text, "1"),), caption=text))


@pytest.mark.parametrize("text", NASTY)
def test_every_text_block_shows_its_text_and_nothing_else(text):
    page = shown(render_markdown(one_block_report(text)))
    # the report's own formatting: its title, and the table's caption in italics
    assert page.tags.count("h1") == 1 and page.tags.count("em") == 1
    tags = [t for t in page.tags if t != "em"]
    assert not FORMATTING & set(tags), (text, set(tags) & FORMATTING)
    assert page.tags.count("ul") == 1 and page.tags.count("table") == 1
    want = " ".join(text.split())
    by_tag = {}
    for tag, got in page.texts:
        by_tag.setdefault(tag, []).append(got)
    assert by_tag["h2"] == [want]
    assert by_tag["li"] == [want, want]
    assert by_tag["th"] == [want, "n"] and by_tag["td"] == [want, "1"]
    # the paragraph and the table's caption (set in italics by the report)
    assert by_tag["p"][1] == want


def test_a_figure_caption_is_its_alt_text_and_its_caption(tmp_path):
    for text in NASTY:
        page = shown(render_markdown(Report("t").add(Figure("figs/a.png", text))))
        assert page.alts == [" ".join(text.split())]
        assert page.tags.count("em") == 1 and page.tags.count("a") == 1  # caption, pdf link
        assert "figs/a.png" in render_markdown(Report("t").add(Figure("figs/a.png", text)))


def test_random_text_round_trips():
    rng = random.Random(0)
    alphabet = "ab_*`~[]()<>&#;!|-+=.1 \\:/"
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24)))
        page = shown(render_markdown(Report("t").add(Paragraph(text), Bullets((text,)))))
        want = " ".join(text.split())
        got = {tag: value for tag, value in page.texts}
        assert got.get("li", "") == want and got.get("p", "") == want, (text, page.texts)
        assert not FORMATTING & set(page.tags), (text, set(page.tags) & FORMATTING)


def test_plain_text_stays_readable_in_the_file():
    for text in ("val_accuracy", "p < 0.05", "L=2, gamma=0.5", "-0.5 change", "3.1 ± 0.2",
                 "training not fit (train < 95.0%) in 4", "log-vol @0.3"):
        assert md_text(text) == text
    assert md_text("a_b*c") == "a_b\\*c"
