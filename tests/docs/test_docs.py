"""The documentation is checked: its code runs, its links resolve, its lists are complete.

How a fenced code block in ``docs/*.md`` is treated depends on its info string (the word after
the opening fence) and on an optional marker comment on the line just above the fence:

- ``python``: executed in a fresh namespace, in the order of the document, with the working
  folder and environment of the ``coalition`` fixture below: a real ``clearhouse serve`` on a
  sandbox coalition of its own, whose November 2026 has been traded and settled; ``CLEARHOUSE_URL``,
  ``KEY_ID``, ``KEY_FILE`` (the bakery's key), ``MEMBER_ID`` and ``AUDITOR_TOKEN`` are set, and
  the working folder holds copies of ``contracts/`` and ``reports/`` (so an output computed from
  a benchmark report fails when the report changes and the page does not). Blocks of one document
  share that folder, so a later block may read what an earlier one wrote.
  The auditor guide's independent auditor is such a block and also a file of the suite,
  ``tests/web/independent_auditor.py``; the two must be the same text (run with ``__name__``
  ``"__main__"``, as here, it audits the coalition as a script).
- ``output``: exactly what the ``python`` block just before it printed (trailing blanks aside).
- ``sh``: executed line by line, in the order of the document, against a sandbox of the
  document's own: a fresh database (``DATABASE_URL``) and a temporary working folder that holds
  a copy of ``contracts/``. A line may be ``export NAME=value`` or ``[NAME=value ...] clearhouse
  ...`` (run in-process through click's ``CliRunner``; it must exit 0); comments and ``\\``
  continuations are understood; anything else fails the test.
- ``<!-- docs-test: skip: REASON -->`` on the line above a ``python`` or ``sh`` block: not run
  (a production server, a running process, secrets, tools outside Python); the ``clearhouse``
  commands in it are still checked to exist with the options used.
- ``text``, ``console``, no info string: output shown to the reader; ``toml``, ``json``,
  ``jsonl``, ``http``, ``mermaid``: data, wire examples and diagrams. Never run.

Any other info string fails ``test_blocks_have_a_known_kind``, so a typo cannot silently turn a
runnable block into an unchecked one.

Besides running blocks, the tests check that every relative link in ``docs/*.md`` and
``README.md`` points to an existing file (and heading), that ``docs/operations.md`` names every
setting ``config.py`` reads and no other, that the partner guide explains every problem code,
that every ``clearhouse`` command and every HTTP route appears somewhere in the docs, and that the
partner guide's worked signature is what the project's own signing code makes and accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import io
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import unicodedata
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import click
import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from clearhouse.cli import main
from clearhouse.crypto.ed25519 import parse_public_key
from clearhouse.web.problem_codes import PROBLEMS
from clearhouse_client import PartnerClient
from clearhouse_client.http_signatures import (
    HeaderFields,
    RequestMessage,
    sign_message,
    verify_signature,
)
from clearhouse_client.keys import load_private_key
from tests.conftest import _create_database, _drop_database, _server_url
from tests.web.test_signatures import RFC9421_B14_PRIVATE_KEY, RFC9421_B14_PUBLIC_KEY

REPO: Final = Path(__file__).resolve().parents[2]
DOCS: Final = sorted((REPO / "docs").glob("*.md"))
CLEARHOUSE: Final = str(Path(sys.executable).parent / "clearhouse")

RUN: Final = {"python", "sh"}
SHOWN: Final = {"", "output", "text", "console", "toml", "json", "jsonl", "http", "mermaid"}
SKIP_MARKER: Final = re.compile(r"<!--\s*docs-test:\s*skip\s*:?\s*(?P<reason>.*?)\s*-->")
SETTLED_MONTH: Final = "2026-11"
INDEPENDENT_AUDITOR: Final = REPO / "tests/web/independent_auditor.py"


# --- Markdown ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    """The line of the opening fence, counted from 1."""
    language: str
    code: str
    skip: str | None
    """The reason given in a skip marker above the block, if there is one."""

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in RUN and self.skip is None


_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


def parse(path: Path) -> tuple[list[Block], list[str]]:
    """The fenced code blocks of a Markdown file (CommonMark fences), in order, and the lines
    outside them."""
    lines = path.read_text().splitlines()
    found: list[Block] = []
    outside: list[str] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            outside.append(lines[index])
            index += 1
            continue
        start, fence, indent = index, opening["fence"], len(opening["indent"])
        language = (opening["info"].strip().split() or [""])[0]
        previous = next((x for x in reversed(lines[:index]) if x.strip()), "")
        marker = SKIP_MARKER.search(previous)
        body: list[str] = []
        index += 1
        while index < len(lines):
            closing = lines[index].strip()
            if closing.startswith(fence[0] * len(fence)) and not closing.strip(fence[0]):
                break
            line = lines[index]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))) :])
            index += 1
        reason = None if marker is None else marker["reason"]
        found.append(Block(path, start + 1, language, "\n".join(body) + "\n", reason))
        index += 1
    return found, outside


def blocks(path: Path) -> list[Block]:
    return parse(path)[0]


def outside_fences(path: Path) -> list[str]:
    return parse(path)[1]


def prose(path: Path) -> str:
    """The text of a Markdown file outside its fenced blocks and inline code spans."""
    return "\n".join(re.sub(r"`[^`]*`", "", line) for line in outside_fences(path))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading).strip().lower()
    text = "".join(
        ch for ch in text if ch in " -" or unicodedata.category(ch)[0] in {"L", "N"} or ch == "_"
    )
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in outside_fences(path):
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading is None:
            continue
        base = slug(heading[1])
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def doc_id(path: Path) -> str:
    return path.name


# --- The clearhouse command ----------------------------------------------------------------


def command_lines(code: str) -> list[str]:
    """Shell lines with their ``\\`` continuations joined; blank lines and comments left out."""
    joined, current = [], ""
    for raw in code.splitlines():
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        current += raw
        if current.strip() and not current.strip().startswith("#"):
            joined.append(current.strip())
        current = ""
    return joined


_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
_SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", "2>", "2>&1", "&"}


def split_command(line: str) -> tuple[dict[str, str], list[str]]:
    """Leading ``NAME=value`` assignments, and the words of the command up to any operator."""
    words = shlex.split(line, comments=True)
    assignments: dict[str, str] = {}
    while words and _ASSIGNMENT.match(words[0]):
        name, _, value = words.pop(0).partition("=")
        assignments[name] = value
    command: list[str] = []
    for word in words:
        if word in _SHELL_OPERATORS or word.startswith((">", "2>", "|")):
            break
        command.append(word)
    return assignments, command


def resolve(words: list[str]) -> tuple[click.Command, list[str], list[str]]:
    """The click command named by ``clearhouse WORDS``, its path, and the words after it."""
    command: click.Command = main
    path: list[str] = []
    rest = list(words)
    while isinstance(command, click.Group):
        if not rest or rest[0].startswith("-"):
            break
        name = rest.pop(0)
        sub = command.commands.get(name)
        if sub is None:
            raise AssertionError(f"clearhouse {' '.join([*path, name])}: no such command")
        command, path = sub, [*path, name]
    return command, path, rest


def check_command(words: list[str], where: str) -> None:
    command, path, rest = resolve(words)
    options = {"--help", "-h"}
    for parameter in command.params:
        options.update(getattr(parameter, "opts", []))
        options.update(getattr(parameter, "secondary_opts", []))
    if "--help" not in rest and "-h" not in rest:
        assert not isinstance(command, click.Group), f"{where}: clearhouse {' '.join(path)} alone"
    for word in rest:
        if word.startswith("-") and word != "-":
            name = word.split("=", 1)[0]
            assert name in options, f"{where}: clearhouse {' '.join(path)} has no option {name}"


def leaf_commands(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[str]:
    names = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            names += leaf_commands(command, (*prefix, name))
        else:
            names.append(" ".join((*prefix, name)))
    return names


# --- Static checks -------------------------------------------------------------------------


@pytest.mark.parametrize("path", DOCS, ids=doc_id)
def test_blocks_have_a_known_kind(path: Path) -> None:
    for block in blocks(path):
        assert block.language in RUN | SHOWN, f"{block.where}: unknown kind {block.language!r}"
        if block.skip is not None:
            assert block.language in RUN, f"{block.where}: a skip marker on a block never run"
            assert block.skip, f"{block.where}: a skip marker must give its reason"


@pytest.mark.parametrize("path", DOCS, ids=doc_id)
def test_data_blocks_parse(path: Path) -> None:
    for block in blocks(path):
        if block.language == "json":
            json.loads(block.code)
        elif block.language == "toml":
            tomllib.loads(block.code)


@pytest.mark.parametrize("path", DOCS, ids=doc_id)
def test_every_output_block_follows_a_python_block_that_runs(path: Path) -> None:
    found = blocks(path)
    for previous, block in zip([None, *found], found, strict=False):
        if block.language == "output":
            assert previous is not None, f"{block.where}: output of nothing"
            assert previous.language == "python", f"{block.where}: output of a non-python block"
            assert previous.runs, f"{block.where}: output of a block that is not run"


@pytest.mark.parametrize("path", [*DOCS, REPO / "README.md"], ids=doc_id)
def test_relative_links_point_to_existing_files(path: Path) -> None:
    text = prose(path)
    targets = re.findall(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)
    targets += re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", text, flags=re.MULTILINE)
    checked = 0
    for target in targets:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{path.name}: the link {target} points to nothing"
        if fragment and linked.suffix == ".md":
            assert fragment in anchors(linked), f"{path.name}: no heading #{fragment} in {linked}"
        checked += 1
    if path.name != "ledger.md":
        assert checked, f"{path.name} links to nothing at all"


def test_operations_names_every_setting_and_only_real_ones() -> None:
    config = (REPO / "src/clearhouse/config.py").read_text()
    read = set(re.findall(r"\"(CLEARHOUSE_[A-Z0-9_]+)\"", config)) | {"DATABASE_URL"}
    assert "CLEARHOUSE_MASTER_KEY" in read  # the pattern still finds what config.py reads
    operations = (REPO / "docs/operations.md").read_text()
    named = set(re.findall(r"\b(CLEARHOUSE_[A-Z0-9_]+|DATABASE_URL)\b", operations))
    assert sorted(read - named) == [], "settings that docs/operations.md does not explain"
    assert sorted(named - read) == [], "docs/operations.md names settings that do not exist"


def test_the_partner_guide_explains_every_problem_code() -> None:
    guide = (REPO / "docs/partner-guide.md").read_text()
    missing = [code for code in PROBLEMS if f"`{code}`" not in guide]
    assert missing == []


def test_every_command_is_documented() -> None:
    text = "\n".join(p.read_text() for p in [*DOCS, REPO / "README.md"])
    missing = [name for name in leaf_commands() if f"clearhouse {name}" not in text]
    assert missing == []


def test_every_api_route_is_documented(tmp_path: Path) -> None:
    from clearhouse.config import Settings
    from clearhouse.web.app import create_app

    settings = Settings.from_env(
        {
            "CLEARHOUSE_SANDBOX": "1",
            "CLEARHOUSE_SIGNING_KEY_FILE": str(tmp_path / "key.pem"),
        }
    )
    paths = {
        re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path).rstrip("/") or "/"
        for route in create_app(settings).routes
        if not route.path.startswith("/schema")
    }
    assert "/v1/transactions/issue" in paths
    text = "\n".join(p.read_text() for p in DOCS)
    assert sorted(p for p in paths if p not in text) == []


@pytest.mark.parametrize("path", [*DOCS, REPO / "README.md"], ids=doc_id)
def test_clearhouse_commands_in_shell_blocks_exist(path: Path) -> None:
    for block in blocks(path):
        if block.language != "sh":
            continue
        for line in command_lines(block.code):
            _, words = split_command(line)
            if words and Path(words[0]).name == "clearhouse":
                check_command(words[1:], block.where)


def test_the_auditor_guide_carries_the_independent_auditor_as_tested() -> None:
    """The guide's whole-check program is ``tests/web/independent_auditor.py``, character for
    character: the web tests hold that file to verifying a settled month with none of
    Clearhouse's code and to naming what was tampered with; the run of the guide's python
    blocks executes this copy against the sandbox coalition."""
    module = INDEPENDENT_AUDITOR.read_text()
    opening = module.splitlines()[0]
    carried = [
        b
        for b in blocks(REPO / "docs/auditor-guide.md")
        if b.language == "python" and b.code.splitlines()[:1] == [opening]
    ]
    assert len(carried) == 1, f"docs/auditor-guide.md: one python block opens with {opening}"
    (block,) = carried
    assert block.runs, f"{block.where}: the independent auditor must run"
    difference = difflib.unified_diff(
        module.splitlines(),
        block.code.splitlines(),
        str(INDEPENDENT_AUDITOR.relative_to(REPO)),
        block.where,
        lineterm="",
    )
    assert block.code == module, "\n".join(difference)


def test_the_worked_signature_example_is_what_clearhouse_signs_and_accepts() -> None:
    """The request of the partner guide's worked example (its ``http`` block) and the signature
    printed for it: the partner client's signing code, which the server verifies with too,
    makes the same Content-Digest, Signature-Input and Signature from the same inputs, and its
    verifier accepts them."""
    guide = blocks(REPO / "docs/partner-guide.md")
    printed = next(b for b in guide if b.language == "output" and "@signature-params" in b.code)
    wire = next(b for b in guide if b.language == "http")
    base_text, _, field_text = printed.code.strip("\n").partition("\n\n")
    base = dict(line.split(": ", 1) for line in base_text.splitlines())
    shown = dict(line.split(": ", 1) for line in field_text.splitlines())
    head, _, body_text = wire.code.partition("\n\n")
    request_line, *header_lines = head.splitlines()
    sent = dict(line.split(": ", 1) for line in header_lines)
    body = body_text.strip("\n").encode()
    method, path, _ = request_line.split(" ")
    assert int(sent["Content-Length"]) == len(body)
    assert {k: sent[k] for k in shown} == shown, "the request on the wire is not the one signed"

    params = dict(re.findall(r";(\w+)=\"?([^;\"]*)\"?", base['"@signature-params"']))
    covered = re.findall(r"\"([^\"]+)\"", base['"@signature-params"'].split(")")[0])
    message = RequestMessage(
        method,
        f"https://{sent['Host']}{path}",
        HeaderFields(
            (name, sent[name]) for name in ("Content-Type", "Idempotency-Key", "Data-Purpose")
        ),
    )
    sign_message(
        message,
        key_id=params["keyid"],
        private_key=load_private_key(RFC9421_B14_PRIVATE_KEY.encode()),
        covered=covered,
        label="sig1",
        body=body,
        nonce=params["nonce"],
        created=datetime.fromtimestamp(int(params["created"]), UTC),
    )
    for name in ("Content-Digest", "Signature-Input", "Signature"):
        assert message.headers.get(name) == shown[name], name
    assert base['"@target-uri"'] == message.url
    verify_signature(message, params["keyid"], parse_public_key(RFC9421_B14_PUBLIC_KEY))


# --- Running blocks ------------------------------------------------------------------------


def _environment(overrides: Mapping[str, str]) -> dict[str, str | None]:
    """The process environment for a command: no CLEARHOUSE_* or DATABASE_URL of the outer
    environment leaks in; ``overrides`` set what the sandbox needs."""
    env: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith("CLEARHOUSE_")
    }
    env["DATABASE_URL"] = None
    env.update(overrides)
    return env


def run_clearhouse(
    words: list[str], env: Mapping[str, str], cwd: Path, where: str = "setup"
) -> str:
    """``clearhouse WORDS`` in this process, in ``cwd``; it must succeed. Its output."""
    with contextlib.chdir(cwd):
        result = CliRunner().invoke(main, words, env=_environment(env), catch_exceptions=False)
    assert result.exit_code == 0, f"{where}: clearhouse {' '.join(words)}\n{result.output}"
    return result.output


@contextlib.contextmanager
def a_database() -> Iterator[str]:
    """A fresh, empty database on the test server (migrations are the sandbox's business)."""
    server_url = _server_url()
    name = f"clearhouse_docs_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_database(server_url, name))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_drop_database(server_url, name))


def a_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "contracts", root / "contracts")
    shutil.copytree(REPO / "reports", root / "reports", ignore=shutil.ignore_patterns("demo"))
    return root


def run_sh_block(block: Block, env: dict[str, str], cwd: Path) -> None:
    for line in command_lines(block.code):
        words = shlex.split(line, comments=True)
        if words and words[0] == "export":
            for assignment in words[1:]:
                name, _, value = assignment.partition("=")
                env[name] = value
            continue
        assignments, command = split_command(line)
        refusal = (
            f"{block.where}: a ```sh block runs only `export` and `clearhouse ...` lines; "
            f"mark it <!-- docs-test: skip: REASON --> if it cannot run here: {line}"
        )
        assert command, refusal
        assert command[0] == "clearhouse", refusal
        assert len(assignments) + len(command) == len(words), refusal
        assert "$" not in line, f"{block.where}: no shell expansion in a block that runs: {line}"
        check_command(command[1:], block.where)
        _, path, _ = resolve(command[1:])
        assert path[:1] not in (["serve"], ["demo"], ["bench"]), (
            f"{block.where}: clearhouse {path[0]} does not belong in a block that runs"
        )
        run_clearhouse(command[1:], {**env, **assignments}, cwd, block.where)


@pytest.mark.parametrize(
    "path", [p for p in DOCS if any(b.runs and b.language == "sh" for b in blocks(p))], ids=doc_id
)
def test_shell_blocks_run_in_a_sandbox(path: Path, tmp_path: Path) -> None:
    folder = a_folder(tmp_path / "work")
    with a_database() as database_url:
        env = {
            "DATABASE_URL": database_url,
            "CLEARHOUSE_DATA_DIR": str(tmp_path / "data"),
            "CLEARHOUSE_LOG_LEVEL": "WARNING",
        }
        for block in blocks(path):
            if block.runs and block.language == "sh":
                run_sh_block(block, env, folder)


# --- The coalition the python blocks talk to ---------------------------------------------


@dataclass(frozen=True)
class Coalition:
    url: str
    key_id: str
    key_file: Path
    member_id: str
    auditor_token: str
    workspace: Path

    def environment(self) -> dict[str, str]:
        return {
            "CLEARHOUSE_URL": self.url,
            "KEY_ID": self.key_id,
            "KEY_FILE": str(self.key_file),
            "MEMBER_ID": self.member_id,
            "AUDITOR_TOKEN": self.auditor_token,
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def a_server(env: Mapping[str, str], cwd: Path, port: int) -> Iterator[str]:
    url = f"http://127.0.0.1:{port}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CLEARHOUSE_")} | dict(
        env
    )
    log_path = cwd / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [CLEARHOUSE, "serve", "--port", str(port)],
            env=environment,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                raise AssertionError(log_path.read_text())
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def coalition(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coalition]:
    """A sandbox coalition behind a real server: the example contracts, the bakery's key, a
    member, November 2026 traded under both of the bakery's contract versions and settled, and
    an auditor token. The sandbox clock stands just past the month's end."""
    root = tmp_path_factory.mktemp("coalition")
    workspace = a_folder(root / "workspace")
    port = _free_port()
    with a_database() as database_url:
        env = {
            "DATABASE_URL": database_url,
            "CLEARHOUSE_SANDBOX": "1",
            "CLEARHOUSE_DATA_DIR": str(root / "data"),
            "CLEARHOUSE_LOG_LEVEL": "WARNING",
            "CLEARHOUSE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        }

        def cli(*words: str) -> str:
            return run_clearhouse(list(words), env, root)

        cli("db", "upgrade")
        cli("contracts", "load", str(REPO / "contracts"))
        cli("key", "generate", "keys/baeckerei")
        added = re.search(
            r"key (\S+) added", cli("key", "add", "baeckerei-schmidt", "keys/baeckerei.pub.pem")
        )
        assert added is not None
        member_id = "m-1001"
        cli("member", "enrol", member_id)
        cli("clock", "set", "2026-11-10T09:00:00Z")
        with a_server(env, root, port) as url:
            key_file = root / "keys/baeckerei.pem"
            with PartnerClient(url, key_id=added[1], private_key=key_file.read_bytes()) as client:
                sale = datetime(2026, 11, 10, 8, 59, tzinfo=UTC)
                client.issue(member_id, 1000, reference="receipt 1001", occurred_at=sale)
                client.redeem(member_id, 200, reference="receipt 1002", occurred_at=sale)
                cli("clock", "set", "2026-11-20T09:00:00Z")
                sale = datetime(2026, 11, 20, 8, 59, tzinfo=UTC)
                issued = client.issue(member_id, 500, reference="receipt 2001", occurred_at=sale)
                client.redeem(member_id, 100, reference="receipt 2002", occurred_at=sale)
                client.reverse(issued, reason="returned goods", points=50)
            cli("clock", "set", "2026-12-01T00:00:05Z")
            cli("settle", SETTLED_MONTH)
            token = cli("token", "create", "--role", "auditor", "--label", "docs").splitlines()[-1]
            yield Coalition(url, added[1], key_file, member_id, token, workspace)


def _compare(block: Block, printed: str, expected: Block) -> None:
    got = [line.rstrip() for line in printed.strip("\n").splitlines()]
    want = [line.rstrip() for line in expected.code.strip("\n").splitlines()]
    assert got == want, (
        f"{expected.where}: the output shown is not what {block.where} prints:\n" + "\n".join(got)
    )


@pytest.mark.parametrize(
    "path",
    [p for p in DOCS if any(b.runs and b.language == "python" for b in blocks(p))],
    ids=doc_id,
)
def test_python_blocks_run_against_a_coalition(
    path: Path, coalition: Coalition, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in coalition.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(coalition.workspace)
    found = blocks(path)
    for block, following in zip(found, [*found[1:], None], strict=True):
        if not (block.runs and block.language == "python"):
            continue
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block.code, block.where, "exec"), {"__name__": "__main__"})
        if following is not None and following.language == "output":
            _compare(block, printed.getvalue(), following)
