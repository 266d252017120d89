"""MkDocs hooks (mkdocs.yml: hooks). The site's "Lessons" section lists every notebook in notebooks/ (docs/lessons
links there) and its subfolders, each README first, then the notebooks by name, so a new notebook needs no edit of
mkdocs.yml; their links into the source become file names; the API reference shows the docstrings' Sphinx
cross-references as plain code."""

import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.pages import Page


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    lessons = Path(config.docs_dir, "lessons")
    pages = [p for p in lessons.rglob("*") if p.suffix in (".md", ".ipynb") and ".ipynb_checkpoints" not in p.parts]
    # Each folder's README first, then its notebooks by name; the top folder before its subfolders.
    pages.sort(key=lambda p: (len(p.relative_to(lessons).parts), str(p.parent), p.name != "README.md", p.name))
    for section in config.nav:
        if isinstance(section, dict) and "Lessons" in section:
            section["Lessons"] = [f"lessons/{page.relative_to(lessons).as_posix()}" for page in pages]
    return config


SOURCE_LINK = re.compile(r"\[([^\]]+)\]\(\.\./((?:bert|scripts|tests)/[^)#\s]*)(?:#L(\d+)(?:-L(\d+))?)?\)")
FOLDER_LINK = re.compile(r"\]\(((?:[\w-]+/)+)\)")


def on_page_markdown(markdown: str, page: Page, **kwargs: object) -> str:
    """The lessons' links into the package's source (``[x](../bert/model.py#L43-L73)``, which GitHub shows) become the
    file and lines in code (the site has no source pages); a link to a folder of lessons goes to its README."""
    if not page.file.src_uri.startswith("lessons/"):
        return markdown

    def named(match: re.Match) -> str:
        text, path, first, last = match.groups()
        lines = f", lines {first}–{last}" if last else f", line {first}" if first else ""
        return f"{text} (`{path}`{lines})"

    return FOLDER_LINK.sub(r"](\1README.md)", SOURCE_LINK.sub(named, markdown))


SPHINX_ROLE = re.compile(r":(?:mod|class|func|meth|data|attr|exc):<code>(~?)([\w.]+)</code>")


def on_page_content(html: str, **kwargs: object) -> str:
    """The docstrings' Sphinx cross-references (``:class:`~bert.engine.loop.Engine```) as code: ``Engine``."""
    def plain(match: re.Match) -> str:
        short, name = match.groups()
        return f"<code>{name.rsplit('.', 1)[-1] if short else name}</code>"

    return SPHINX_ROLE.sub(plain, html)
