"""Every reference to the design documents points at a section that exists.

Code, tests, benches and the README cite ``docs/<file>.md#<anchor>`` (GitHub's anchor of a
heading: lower case, punctuation dropped, spaces as dashes). A renamed heading or a moved
document breaks a reference silently; this test finds it, and refuses the old section-number
style (a section sign followed by a number), which named a document the repository never held.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# Where references live; docs/ itself is scanned for its own links.
SCANNED = ("marsha_runner", "tests", "bench", ".ci", "docs", "README.md", "Makefile")
TEXT_SUFFIXES = {".py", ".md", ".html", ".txt", ".toml", ".sh", ".cfg", ".yml", ".yaml", ""}
REFERENCE = re.compile(r"docs/([\w./-]+?\.md)(?:#([\w-]+))?")
LOCAL_LINK = re.compile(r"\]\(#([\w-]+)\)")
SECTION_SIGN = "\u00a7"  # written escaped so this file does not cite itself


def scanned_files():
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            yield path
            continue
        for file in sorted(path.rglob("*")):
            parts = set(file.relative_to(ROOT).parts)
            if file.is_file() and file.suffix in TEXT_SUFFIXES and not parts & {"vendor"}:
                if "__pycache__" not in parts and file.name != "Dockerfile":
                    yield file


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings of ``markdown`` (fenced code skipped; repeats -1, -2)."""
    found, counts, fenced = set(), {}, False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        repeat = counts.get(slug, 0)
        counts[slug] = repeat + 1
        found.add(slug if not repeat else f"{slug}-{repeat}")
    return found


def test_anchors_follow_github():
    text = "# A title\n## Library wall\n```\n## not a heading\n```\n## Pings, before commit!\n"
    text += "## Library wall\n"
    assert anchors(text) == {"a-title", "library-wall", "pings-before-commit", "library-wall-1"}


def test_every_design_reference_points_at_an_existing_section():
    checked, broken = 0, []
    for file in scanned_files():
        text = file.read_text(encoding="utf-8", errors="replace")
        where = file.relative_to(ROOT)
        for line_number, line in enumerate(text.splitlines(), 1):
            targets = [(m.group(1), m.group(2)) for m in REFERENCE.finditer(line)]
            if file.parent == DOCS:
                targets += [(file.name, anchor) for anchor in LOCAL_LINK.findall(line)]
            for document, anchor in targets:
                checked += 1
                target = DOCS / document
                if not target.is_file():
                    broken.append(f"{where}:{line_number}: no file docs/{document}")
                elif anchor and anchor not in anchors(target.read_text(encoding="utf-8")):
                    broken.append(f"{where}:{line_number}: no #{anchor} in docs/{document}")
    assert not broken, "\n".join(broken)
    assert checked >= 20  # the code cites the design doc: a scan finding nothing is broken


def test_no_section_number_references_are_left():
    """Old references ("DESIGN" and a section number) named no file of the repository."""
    stale = [
        f"{file.relative_to(ROOT)}:{number}: {line.strip()}"
        for file in scanned_files()
        if file.parent != DOCS
        for number, line in enumerate(file.read_text(errors="replace").splitlines(), 1)
        if SECTION_SIGN in line
    ]
    assert not stale, "\n".join(stale)


def test_the_readme_links_the_design_document():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/design.md)" in readme
