"""The README (and docs/) cannot drift from the code: their runnable examples are run here.

Convention: an HTML comment on the line before a ```bash block marks it runnable:

    <!-- runnable -->            every command must exit 0
    <!-- runnable exit=N -->     every command must exit N
    <!-- runnable emulator -->   run against a fresh `python -m runner.local`; the documented
                                 http://127.0.0.1:4566 is replaced by its address

Each line is one command (a trailing backslash continues it; `#` starts a comment); `python` is
the interpreter running the tests; commands run from the repository root without AWS
credentials; `main.py` commands get `hydra.run.dir` (or `hydra.sweep.dir`) and `workdir` in a
temporary directory, so nothing is written into the repository. Blocks run two at a time (the
slowest is a checkov-backed 18-job sweep).

Also checked here: the README's tables of stages and config groups against the code and
conf/, its first screen, and that relative links and anchors resolve.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from docs_helpers import (
    DOCUMENTED_EMULATOR_URL,
    PYTHONS,
    REPO_ROOT,
    Ran,
    is_main_py,
    isolate_main_py,
    local_emulator,
    run_command,
    with_interpreter,
)

README = REPO_ROOT / "README.md"
DOCS = [README, *sorted((REPO_ROOT / "docs").glob("*.md")), *sorted((REPO_ROOT / "examples").glob("*.md"))]
MARKER = re.compile(r"^<!--\s*runnable\b(?P<options>[^>]*?)\s*-->$")
WORKERS = 2


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line number of the marker
    commands: tuple[str, ...]
    exit_code: int = 0
    emulator: bool = False
    problems: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return f"{self.path.name}:{self.line}"


def _commands(body: list[str]) -> list[str]:
    commands, pending = [], ""
    for raw in body:
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        if command and not command.startswith("#"):
            commands.append(command)
    return commands


def runnable_blocks(path: Path) -> list[Block]:
    """Every block marked runnable in ``path``; a malformed marker becomes a block with problems."""
    lines = path.read_text().splitlines()
    blocks = []
    for index, line in enumerate(lines):
        found = MARKER.match(line.strip())
        if not found:
            if "runnable" in line and line.lstrip().startswith("<!--"):
                blocks.append(Block(path, index + 1, (), problems=(f"unreadable marker {line.strip()!r}",)))
            continue
        problems, exit_code, emulator = [], 0, False
        for option in found.group("options").split():
            if re.fullmatch(r"exit=\d+", option):
                exit_code = int(option.split("=")[1])
            elif option == "emulator":
                emulator = True
            else:
                problems.append(f"unknown option {option!r}")
        if index + 1 >= len(lines) or lines[index + 1].strip() != "```bash":
            problems.append("the marker must be on the line right before a ```bash fence")
            blocks.append(Block(path, index + 1, (), exit_code, emulator, tuple(problems)))
            continue
        end = next((j for j in range(index + 2, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            problems.append("the ```bash block is never closed")
            end = len(lines)
        commands = _commands(lines[index + 2:end])
        if not commands:
            problems.append("the block has no command")
        blocks.append(Block(path, index + 1, tuple(commands), exit_code, emulator, tuple(problems)))
    return blocks


BLOCKS = [block for path in DOCS for block in runnable_blocks(path)]


def run_block(block: Block, tmp: Path) -> list[tuple[Ran, str]]:
    """(what ran, why it is wrong or "") for every command of the block, in order."""
    with local_emulator(tmp) if block.emulator else contextlib.nullcontext("") as emulator_url:
        results = []
        for number, command in enumerate(block.commands):
            argv = shlex.split(command, comments=True)
            if not argv or argv[0] not in PYTHONS:
                results.append((Ran(argv, -1, ""), f"only python commands can be runnable: {command!r}"))
                continue
            argv = with_interpreter(argv)
            if emulator_url:
                argv = [a.replace(DOCUMENTED_EMULATOR_URL, emulator_url) for a in argv]
            if is_main_py(argv):
                argv = isolate_main_py(argv, tmp / f"command-{number}")
            ran = run_command(argv, tmp)
            wrong = "" if ran.returncode == block.exit_code else f"expected exit {block.exit_code}"
            results.append((ran, wrong))
        return results


@pytest.fixture(scope="session")
def scheduled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[dict[str, Future[list[tuple[Ran, str]]]]]:
    """The selected blocks, started two at a time in the order the tests will ask for them."""
    selected = [item.callspec.params["block"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_runnable_block" and hasattr(item, "callspec")]
    pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="docs-block")
    futures = {}
    for block in selected:
        if not block.problems and block.name not in futures:
            tmp = tmp_path_factory.mktemp(re.sub(r"\W", "-", block.name))
            futures[block.name] = pool.submit(run_block, block, tmp)
    try:
        yield futures
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_runnable_block(block: Block, scheduled: dict[str, Future[list[tuple[Ran, str]]]]) -> None:
    assert not block.problems, f"{block.name}: " + "; ".join(block.problems)
    results = scheduled[block.name].result()
    wrong = [f"{why}\n{ran.explain()}" for ran, why in results if why]
    assert not wrong, f"{block.name}:\n" + "\n\n".join(wrong)


def test_the_readme_has_runnable_blocks_of_each_kind() -> None:
    readme = [b for b in BLOCKS if b.path == README]
    assert len(readme) >= 10
    assert {b.exit_code for b in readme} >= {0, 1, 2}
    assert any(b.emulator for b in readme)
    assert any("-m" in shlex.split(c) for b in readme for c in b.commands), "a sweep is shown and run"


# ---- the README's first screen and its tables ----------------------------------------------------

def _fenced_blocks(text: str) -> list[tuple[str, list[str]]]:
    blocks, lines, index = [], text.splitlines(), 0
    while index < len(lines):
        opening = re.fullmatch(r"```([\w-]*)\s*", lines[index])
        if opening:
            language = opening.group(1)
            end = next(j for j in range(index + 1, len(lines)) if lines[j].strip() == "```")
            blocks.append((language, lines[index + 1:end]))
            index = end
        index += 1
    return blocks


def test_the_first_screen_has_the_two_commands() -> None:
    text = README.read_text()
    first_screen = "\n".join(text.splitlines()[:30])
    language, body = _fenced_blocks(text)[0]
    assert language == "bash"
    assert [line.split("#")[0].strip() for line in body] == ["make run", "make test"]
    assert "make run" in first_screen and "make test" in first_screen


def _table_after(text: str, header_start: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_stages_table_lists_every_stage() -> None:
    from runner.core.settings import STAGES

    rows = _table_after(README.read_text(), "| stage |")
    assert [_code_spans(row[0])[0] for row in rows] == list(STAGES)


def test_the_config_groups_table_matches_conf() -> None:
    conf = REPO_ROOT / "conf"
    defaults = {}
    for entry in yaml.safe_load((conf / "config.yaml").read_text())["defaults"]:
        if isinstance(entry, dict):
            defaults.update(entry)
    rows = _table_after(README.read_text(), "| group |")
    documented = {_code_spans(row[0])[0]: _code_spans(row[1]) for row in rows}
    groups = {p.name: sorted(f.stem for f in p.glob("*.yaml")) for p in conf.iterdir() if p.is_dir()}
    assert sorted(documented) == sorted(groups)
    for group, options in documented.items():
        assert sorted(options) == groups[group], f"conf/{group}/ has {groups[group]}, the README lists {options}"
        if defaults.get(group):
            assert options[0] == defaults[group], f"{group}: the default ({defaults[group]}) is listed first"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_relative_links_resolve(path: Path) -> None:
    text = path.read_text()
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    anchors = {_anchor(m) for m in re.findall(r"^#+ (.+)$", prose, flags=re.MULTILINE)}
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z]+://", target):
            continue
        file_part, _, anchor = target.partition("#")
        if file_part and not (path.parent / file_part).exists():
            broken.append(target)
        elif not file_part and anchor not in anchors:
            broken.append(target)
    assert not broken, f"{path.name}: links that go nowhere: {broken}"
