"""The README and the pages in docs/ against the code they describe.

``mkdocs build --strict`` (run by .ci/run) checks the links between the pages in docs/ and the nav; it
never reads the README's own links (GitHub resolves them from the repository root), nor does it know
what the command line and the exporter hold. These tests do: a command, a method or a signature added
to the code without its row in the docs fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from gradcam_serving import signatures as sig
from gradcam_serving.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
NO_FAMILY = "—"


def _slug(heading: str) -> str:
    """A heading's anchor as MkDocs' ``toc`` extension (and, for these headings, GitHub) writes it."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # a `# comment` in a code block is no heading
    return {_slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def _table(text: str, header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header row starts with ``header``, as stripped cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
        rows.append([cell.strip() for cell in cells])
    return rows


def _family(row: sig.SignatureRow) -> str:
    """The family the contract page must show for ``row``.

    Rows carry a ``family`` once path attributions arrive; until then every method is a CAM method.
    """
    if row.head == sig.HEAD_PREDICT:
        return NO_FAMILY
    return f"`{getattr(row, 'family', 'cam')}`"


def test_readme_links_resolve_to_files_and_headings():
    readme = (ROOT / "README.md").read_text()
    links = [link for link in LINK.findall(readme) if not re.match(r"[a-z]+://", link)]
    assert links, "the README links no file"
    for link in links:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.exists(), f"README.md links {link!r}: {target} does not exist"
        if anchor:
            assert anchor in _anchors(target), f"README.md links {link!r}: no heading with that anchor in {path}"


def test_readme_links_every_docs_page_and_mkdocs_lists_every_page():
    readme = (ROOT / "README.md").read_text()
    pages = {page.name for page in DOCS.glob("*.md")}
    linked = {Path(link.partition("#")[0]).name for link in LINK.findall(readme) if link.startswith("docs/")}
    assert pages - {"index.md"} <= linked, f"docs pages the README does not link: {sorted(pages - linked - {'index.md'})}"
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)  # BaseLoader: !relative stays text
    nav = {page for entry in config["nav"] for page in entry.values()}
    assert nav == pages, f"mkdocs.yml's nav and docs/*.md differ: {sorted(nav ^ pages)}"


def test_readme_command_table_has_a_row_per_command():
    rows = _table((ROOT / "README.md").read_text(), "| command |")
    named = {re.match(r"`gradcam-serving ([\w-]+)", row[0]).group(1) for row in rows}
    assert named == set(cli.commands), f"commands without a row: {sorted(set(cli.commands) - named)}; rows without a command: {sorted(named - set(cli.commands))}"


def test_contract_methods_table_names_every_method_with_its_family():
    rows = _table((DOCS / "contract.md").read_text(), "| name | family |")
    assert [row[0] for row in rows] == [f"`{method}`" for method in sig.METHODS]
    table = sig.signature_table(sig.METHODS)
    for row in rows:
        method = row[0].strip("`")
        assert row[1] == _family(table[sig.explain_signature(method)]), f"{method}: family {row[1]}"


def test_contract_signature_table_covers_every_row_with_its_family():
    rows = _table((DOCS / "contract.md").read_text(), "| signature | family |")
    family_of = {name: row[1] for row in rows for name in re.findall(r"`([\w<>]+)`", row[0])}
    method = sig.DEFAULT_EXPORT_METHOD
    for name, row in sig.signature_table([method]).items():
        documented = name.replace(f"_{method}", "_<method>") if row.names_method else name
        assert documented in family_of, f"{documented} has no row in docs/contract.md"
        assert family_of[documented] == _family(row), f"{documented}: family {family_of[documented]}, expected {_family(row)}"
    assert family_of[sig.SERVING_DEFAULT] == NO_FAMILY
