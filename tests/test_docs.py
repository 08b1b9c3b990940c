"""The README and docs/ tell the truth: the tour's commands run as written, every link and anchor resolves, the
README stays a front door (short), and its two commands are the ones CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import SECRET, clean_environ

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
XMAS = Path(sys.executable).with_name("xmas")


def fenced(text: str, after: str, nth: int = 1) -> str:
    """The nth ```bash block after the heading `after`."""
    section = text.split(after, 1)[1]
    return section.split("```bash\n")[nth].split("\n```", 1)[0]


def commands(block: str) -> list[str]:
    """Shell lines of a block, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    lines = [re.sub(r"\s+#(?!\d).*$", "", line).strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, fence = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and re.match(r"#{1,6} ", line):
            found.add(slug(line.lstrip("#")))
    return found


def test_the_readme_is_a_front_door_not_the_manual() -> None:
    lines = README.read_text().splitlines()
    assert 60 <= len(lines) <= 220, len(lines)
    # every page of the manual is reachable from it
    for page in PAGES[1:]:
        assert f"(docs/{page.name})" in README.read_text(), f"the README does not link docs/{page.name}"


def test_every_link_and_anchor_in_the_readme_and_docs_resolves() -> None:
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # an outside address: not ours to check offline
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_readmes_two_commands_are_the_ones_ci_runs() -> None:
    text = README.read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e . && xmas demo" in text
    assert "pip install -e '.[dev]' && python -m pytest" in text
    assert "-e '.[dev]'" in ci and "python -m pytest" in ci


def test_the_five_minute_tour_runs_as_written(tmp_path: Path) -> None:
    """Every command of the README's tour, then of its "while it runs" block, in order, in an empty folder, on a
    fixed clock: each exits 0; the tour ends with an .eml in the outbox and the booked event cancelling what it
    names; the pause, the plan and the import say what they did."""
    tour = commands(fenced(README.read_text(), "## The five-minute tour"))
    running = commands(fenced(README.read_text(), "## The five-minute tour", nth=2))
    assert len(tour) >= 8 and tour[0].startswith("xmas init") and len(running) >= 6
    lines = tour + running
    env = clean_environ(
        {"XMAS_NOW": "2026-12-01T10:35:00Z", "XMAS_SECRET": SECRET, "PATH": f"{XMAS.parent}:/usr/bin:/bin"}
    )
    outputs = []
    for line in lines:
        result = subprocess.run(
            ["bash", "-c", f"cd shop 2>/dev/null; {line}"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{line}\n{result.stdout[-1500:]}\n{result.stderr[-1500:]}"
        outputs.append(result.stdout)
    emls = list((tmp_path / "shop" / ".xmas" / "outbox").glob("*.eml"))
    assert [p.name.split("--")[0] for p in emls] == ["assessment_sarah@example.com_2"]
    booked = next(out for line, out in zip(lines, outputs, strict=True) if line.startswith("xmas event booked"))
    assert "cancelled 3 pending email(s) in assessment" in booked
    said = dict(zip(lines, outputs, strict=True))
    assert "the whole campaign paused since 2026-12-01T10:35:00Z (by cli): price change" in said[running[0]]
    assert "agree: nothing to do" in said["xmas plan"]
    assert "1 enrolled, 0 already enrolled" in said[running[-1]]
