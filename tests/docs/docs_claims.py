"""Read the claims README.md and docs/ make, and check each against the repository.

Every check is a function of a `Page` (one markdown file, split into prose, inline code and
fenced code) and the facts it is judged by; it returns one line per false claim, naming the
file and line. The tests run them over the real pages and over deliberately broken ones.

Claims and what judges them:
- make targets and variables: the Makefile's rules and the variables it reads;
- flags (`-c name=value`, `"name": value`, the flag tables): `infra.config.DEFAULTS`;
- file paths and links (with their `#anchor`): the tree;
- commands (the operator CLIs, `scripts/...`, `npx cdk ...`): their `--help`, run exactly as
  written, which must list every option used and whose usage names the required ones;
- ports: the constants the constructs, the box's provisioning and run-local use;
- dollar figures: each carries an expression (`$384<!-- $ 3*HOURS*price('...') -->`) over
  `make cost`'s JSON and the price table, and must equal it at the precision written.
"""

from __future__ import annotations

import ast
import json
import operator
import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HOURS = 730

_FENCE = re.compile(r"^(\s*)(```+|~~~+)(.*)$")
_INLINE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FIGURE = re.compile(r"\$(\d{1,3}(?:,\d{3})*(?:\.\d+)?|\d+(?:\.\d+)?)(\s*<!--\s*\$\s*(.*?)\s*-->)?")
_MAKE = re.compile(r"(?<![\w./-])make\s+([^`;&|#\n]*)")
_FLAG_ARG = re.compile(r"(?<![\w-])-c\s+([A-Za-z_@][\w@:/.-]*)=")
# A setting as the environment file holds it: `"phase": 3`, `"shift_traffic": true, ...`.
_SETTING = re.compile(r'"[A-Za-z_]\w*": (?:true|false|-?\d+|"[^"]*")')
_SETTINGS = re.compile(rf"{_SETTING.pattern}(?:, {_SETTING.pattern})*")
_JSON_FLAG = re.compile(r'"([A-Za-z_]\w*)": ')
# Lines that show a refused flag on purpose (the error it gets).
_REFUSAL = re.compile(r"unknown flag|mistyped")
_PORT_WORD = re.compile(r"\bports?\s+`?(\d{2,5})\b")
_URL_PORT = re.compile(r"\b(rediss?|https?)://([^\s/:`\"']+):(\d{2,5})")
_SHELL_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=(\"[^\"]*\"|'[^']*'|\S*)\s*$")
_PLACEHOLDER = re.compile(r"<[^<>]*>")
# Paths that are generated, or live on a box or in a container, not in the tree.
GENERATED = ("cdk.out", ".venv", ".venv-scan", "node_modules", ".rehearsal", ".bench")
CLI_NAMES = ("migrate-redis", "shift-traffic", "monitor-migration")
SOURCE_SUFFIXES = (".py", ".md", ".json", ".sh", ".yml", ".yaml", ".txt", ".toml", ".conf")


@dataclass(frozen=True)
class Span:
    """A piece of a page: `kind` is prose, inline (code) or block (a fenced code block)."""

    line: int
    kind: str
    text: str
    language: str = ""


@dataclass(frozen=True)
class Page:
    path: str
    spans: tuple[Span, ...]
    anchors: frozenset[str]
    # The lines outside fenced blocks, as written (tables and figures are read from these).
    lines: tuple[tuple[int, str], ...] = ()

    def where(self, line: int) -> str:
        return f"{self.path}:{line}"

    def of_kind(self, *kinds: str) -> Iterator[Span]:
        return (span for span in self.spans if span.kind in kinds)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*]|<[^>]*>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def parse(path: str, text: str) -> Page:
    spans: list[Span] = []
    anchors: dict[str, int] = {}
    block: list[str] = []
    paragraph: list[tuple[int, str]] = []
    fence = ""
    language = ""
    start = 0

    def flush() -> None:
        spans.extend(_paragraph_spans(paragraph))
        paragraph.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        opened = _FENCE.match(line)
        if fence:
            if opened and opened.group(2).startswith(fence) and not opened.group(3).strip():
                spans.append(Span(start, "block", "\n".join(block), language))
                fence, block = "", []
            else:
                block.append(line)
            continue
        if opened:
            flush()
            fence, language, start = opened.group(2), opened.group(3).strip(), number + 1
            continue
        heading = _HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            count = anchors.get(base, 0)
            anchors[base] = count + 1
            anchors[f"{base}-{count}" if count else base] = 1
        if not line.strip() or heading or line.lstrip().startswith("|"):
            flush()
            paragraph.append((number, line))
            flush()
        else:
            paragraph.append((number, line))
    flush()
    return Page(path, tuple(spans), frozenset(anchors), tuple(_outside_fences(text)))


def _paragraph_spans(lines: list[tuple[int, str]]) -> Iterator[Span]:
    """Prose (inline code blanked out) line by line, and inline code, which may run over a
    line break, as one span at the line where it opens."""
    if not lines:
        return
    text = "\n".join(line for _, line in lines)
    starts = [0]
    for _, line in lines:
        starts.append(starts[-1] + len(line) + 1)

    def line_at(offset: int) -> int:
        index = max(i for i, start in enumerate(starts[:-1]) if start <= offset)
        return lines[index][0]

    blanked = _INLINE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    for (number, _), prose in zip(lines, blanked.split("\n"), strict=True):
        yield Span(number, "prose", prose)
    for match in _INLINE.finditer(text):
        yield Span(line_at(match.start()), "inline", re.sub(r"\s+", " ", match.group(2)).strip())


def load_pages(root: Path = ROOT) -> list[Page]:
    files = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    return [parse(str(f.relative_to(root)), f.read_text()) for f in files]


def command_lines(span: Span) -> Iterator[tuple[int, str]]:
    """Shell commands of a span: continuation lines joined, comments dropped, and the
    variables a block assigns (`ARGS="--zone-id ..."`) expanded in the lines after them."""
    if span.kind == "inline":
        yield span.line, span.text
        return
    if span.kind != "block" or span.language not in {"", "bash", "sh", "shell", "console"}:
        return
    variables: dict[str, str] = {}
    pending, first = "", span.line
    for offset, raw in enumerate(span.text.splitlines()):
        line = raw.split(" #", 1)[0] if not raw.lstrip().startswith("#") else ""
        if not pending:
            first = span.line + offset
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        assigned = _SHELL_ASSIGN.match(whole)
        if assigned and " " not in whole.split("=", 1)[0]:
            variables[assigned.group(1)] = assigned.group(2).strip("\"'")
        for name, value in variables.items():
            whole = whole.replace(f"${name}", value).replace(f"${{{name}}}", value)
        for part in re.split(r"\s*(?:&&|\|\||;)\s*", whole):
            if part:
                yield first, part


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


# ---------------------------------------------------------------------------------------- make


@dataclass(frozen=True)
class MakeFacts:
    targets: frozenset[str]
    variables: frozenset[str]


def make_facts(makefile: Path = ROOT / "Makefile") -> MakeFacts:
    text = makefile.read_text()
    targets = set(re.findall(r"^([a-z][\w.-]*)\s*:(?!=)", text, re.MULTILINE))
    variables = set(re.findall(r"\$\(([A-Z_]+)\)", text))
    return MakeFacts(frozenset(targets), frozenset(variables))


def check_make(page: Page, facts: MakeFacts) -> list[str]:
    problems = []
    for span in page.of_kind("inline", "block"):
        for line, command in command_lines(span):
            match = _MAKE.match(command.strip())
            if not match:
                continue
            for word in _words(match.group(1)):
                name, _, _ = word.partition("=")
                if "=" in word and name not in facts.variables:
                    problems.append(f"{page.where(line)}: make variable {name} is not read")
                elif "=" not in word and word not in facts.targets and not word.startswith("-"):
                    problems.append(f"{page.where(line)}: make has no target {word!r}")
    return problems


# --------------------------------------------------------------------------------------- flags


def _is_flag(name: str, flags: Mapping[str, Any], is_cdk_key: Callable[[str], bool]) -> bool:
    return name in flags or is_cdk_key(name)


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "empty" if value == "" else str(value)


def check_flags(
    page: Page, flags: Mapping[str, Any], is_cdk_key: Callable[[str], bool]
) -> list[str]:
    problems = []
    refusals = {number for number, line in page.lines if _REFUSAL.search(line)}
    for span in page.spans:
        if span.line in refusals:
            continue
        for name in _FLAG_ARG.findall(span.text):
            if not _is_flag(name, flags, is_cdk_key):
                problems.append(f"{page.where(span.line)}: -c {name}= is not a flag")
        if span.kind == "inline" and _SETTINGS.fullmatch(span.text):
            for name in _JSON_FLAG.findall(span.text):
                if name not in flags:
                    problems.append(f'{page.where(span.line)}: "{name}" is not a flag')
    problems += _check_flag_tables(page, flags)
    return problems


def _table_rows(page: Page) -> Iterator[tuple[int, list[str], list[str]]]:
    """(line, header cells, row cells) of every table row, cells as written (with backticks)."""
    header: list[str] = []
    for number, line in page.lines:
        if not line.lstrip().startswith("|"):
            header = []
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if all(re.fullmatch(r":?-{3,}:?", cell) for cell in cells):
            continue
        if not header:
            header = [cell.lower() for cell in cells]
            continue
        yield number, header, cells


def _outside_fences(text: str) -> list[tuple[int, str]]:
    lines, fence = [], ""
    for number, line in enumerate(text.splitlines(), start=1):
        opened = _FENCE.match(line)
        if fence:
            if opened and opened.group(2).startswith(fence) and not opened.group(3).strip():
                fence = ""
            continue
        if opened:
            fence = opened.group(2)
            continue
        lines.append((number, line))
    return lines


def _check_flag_tables(page: Page, flags: Mapping[str, Any]) -> list[str]:
    problems = []
    for line, header, cells in _table_rows(page):
        if not header or header[0] != "flag" or "default" not in header:
            continue
        names = re.findall(r"`([^`]+)`", cells[0])
        defaults = [d.strip() for d in re.sub(r"`", "", cells[header.index("default")]).split(",")]
        for index, name in enumerate(names):
            if name not in flags:
                problems.append(f"{page.where(line)}: flag table names {name!r}, not a flag")
                continue
            if len(defaults) == len(names) and defaults[index] != _default_text(flags[name]):
                problems.append(
                    f"{page.where(line)}: default of {name} is {_default_text(flags[name])!r},"
                    f" the table says {defaults[index]!r}"
                )
    return problems


def documented_flags(page: Page) -> set[str]:
    return {
        name
        for _, header, cells in _table_rows(page)
        if header and header[0] == "flag"
        for name in re.findall(r"`([^`]+)`", cells[0])
    }


# --------------------------------------------------------------------------------------- paths


def _candidate_path(token: str, root: Path) -> str | None:
    token = token.strip().rstrip(".,:;").removeprefix("./")
    if not token or " " in token or token.startswith(("/", "~", "$", "-", "http", "s3:")):
        return None
    if "://" in token or "=" in token or token.startswith(GENERATED):
        return None
    first = token.split("/", 1)[0]
    top_level = (root / first).exists() and first not in {"", "."}
    looks_like_file = token.endswith(SOURCE_SUFFIXES) and re.fullmatch(r"[\w./<>*@-]+", token)
    if "/" in token and re.fullmatch(r"[\w./<>*@-]+", token) and (top_level or looks_like_file):
        return token
    if looks_like_file and top_level:
        return token
    return None


def _exists(path: str, roots: Iterable[Path]) -> bool:
    pattern = _PLACEHOLDER.sub("*", path.split("#", 1)[0]).rstrip("/")
    return any(
        list(base.glob(pattern)) if "*" in pattern else (base / pattern).exists() for base in roots
    )


def check_paths(page: Page, root: Path = ROOT) -> list[str]:
    """Inline paths must exist in the tree (or in a runtime asset root, as the service page
    names its files); links must reach an existing file and heading."""
    roots = [root, *sorted(p for p in (root / "runtime").iterdir() if p.is_dir())]
    problems = []
    for span in page.of_kind("inline"):
        path = _candidate_path(span.text, root)
        if path and not _exists(path, roots):
            problems.append(f"{page.where(span.line)}: {path} does not exist")
    base = (root / page.path).parent
    for span in page.of_kind("prose"):
        for target in _LINK.findall(span.text):
            if re.match(r"^[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (base / file_part).resolve() if file_part else root / page.path
            if not linked.exists():
                problems.append(f"{page.where(span.line)}: link to missing {file_part}")
                continue
            if anchor and linked.suffix == ".md":
                anchors = parse(page.path, linked.read_text()).anchors
                if anchor not in anchors:
                    problems.append(f"{page.where(span.line)}: no heading #{anchor} in {file_part}")
    return problems


# ------------------------------------------------------------------------------------ commands


@dataclass
class HelpRunner:
    """Runs `<command> --help` in the repository, once per distinct command, from a shell
    whose PATH starts with the venv's bin (as after `source .venv/bin/activate`)."""

    root: Path = ROOT
    cache: dict[str, tuple[int, str]] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        path = f"{self.root / '.venv/bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        return {**os.environ, "PATH": path, "NO_COLOR": "1", "COLUMNS": "200"}

    def help(self, prefix: str) -> tuple[int, str]:
        if prefix not in self.cache:
            done = subprocess.run(
                f"{prefix} --help",
                shell=True,
                cwd=self.root,
                env=self.environment(),
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            self.cache[prefix] = (done.returncode, done.stdout + done.stderr)
        return self.cache[prefix]

    def prefetch(self, prefixes: Iterable[str]) -> None:
        todo = sorted(set(prefixes) - set(self.cache))
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(self.help, todo))


def _program(words: list[str]) -> tuple[list[str], list[str]] | None:
    """The words naming the program (with its interpreter) and the rest, for the commands
    this repository provides."""
    if not words:
        return None
    head = words[0]
    if head in CLI_NAMES or re.fullmatch(
        r"(\.venv/bin/)?(migrate-redis|shift-traffic|"
        r"monitor-migration)",
        head,
    ):
        return words[:1], words[1:]
    if re.fullmatch(r"(\./)?scripts/[\w/.-]+\.(py|sh)", head):
        return words[:1], words[1:]
    interpreter = re.fullmatch(r"(\.venv/bin/)?python3?(\.\d+)?", head)
    if interpreter and len(words) > 1 and re.fullmatch(r"(\./)?scripts/[\w/.-]+\.py", words[1]):
        return words[:2], words[2:]
    if head == "npx" and len(words) > 1 and words[1] == "cdk":
        return words[:2], words[2:]
    return None


def _usage_tokens(help_text: str) -> Iterator[tuple[int, str]]:
    """(bracket depth, token) of an argparse usage."""
    usage = re.split(r"\n\s*\n", help_text.strip(), maxsplit=1)[0]
    usage = re.sub(r"\s+", " ", usage.split("usage:", 1)[-1])
    depth = 0
    for token in re.findall(r"[\[\]()]|\{[^}]*\}|[^\s\[\]()|]+", usage):
        if token == "[":
            depth += 1
        elif token == "]":
            depth -= 1
        yield depth, token


def _subcommands(help_text: str) -> list[str]:
    """The commands a CLI takes first: argparse choices or subparsers outside brackets, or
    the CDK CLI's "Commands:" list."""
    if "Commands:" in help_text:
        listed = help_text.split("Commands:", 1)[1].split("\n\n", 1)[0]
        return re.findall(r"^\s+(?:cdk\s+)?([a-z][\w-]*)", listed, re.MULTILINE)
    for depth, token in _usage_tokens(help_text):
        if depth == 0 and token.startswith("{"):
            return token.strip("{}").split(",")
    return []


def _required(help_text: str) -> list[list[str]]:
    """Required options from an argparse usage: those outside brackets (a parenthesised
    `(--a | --b)` group is one requirement met by either)."""
    required: list[list[str]] = []
    group: list[str] | None = None
    for depth, token in _usage_tokens(help_text):
        if token == "(" and depth == 0:
            group = []
        elif token == ")" and group is not None:
            required.append(group)
            group = None
        elif depth == 0 and token.startswith("--"):
            if group is None:
                required.append([token])
            else:
                group.append(token)
    return required


def check_commands(page: Page, runner: HelpRunner) -> list[str]:
    problems = []
    found: list[tuple[int, list[str], list[str]]] = []
    for span in page.of_kind("inline", "block"):
        for line, command in command_lines(span):
            words = [w for w in _words(command) if w != "\\"]
            split = _program(words)
            if split and (split[1] or span.kind == "block" or split[0][0] in CLI_NAMES):
                found.append((line, *split))
    runner.prefetch(" ".join(program) for _, program, _ in found)
    runner.prefetch(
        f"{' '.join(program)} {sub}"
        for _, program, rest in found
        for sub in [w for w in rest if not w.startswith("-")][:1]
        if sub in _subcommands(runner.help(" ".join(program))[1])
    )
    for line, program, rest in found:
        prefix = " ".join(program)
        code, text = runner.help(prefix)
        if code != 0:
            tail = text.strip().splitlines()[-1:] or ["(no output)"]
            problems.append(f"{page.where(line)}: `{prefix} --help` fails: {tail[0]}")
            continue
        subs = _subcommands(text)
        positional = [w for w in rest if not w.startswith("-")]
        if subs and positional and re.fullmatch(r"[a-z][\w-]*", positional[0]):
            sub = positional[0]
            if sub not in subs:
                problems.append(f"{page.where(line)}: {prefix} has no command {sub!r}")
                continue
            prefix = f"{prefix} {sub}"
            code, text = runner.help(prefix)
            if code != 0:
                problems.append(f"{page.where(line)}: `{prefix} --help` fails")
                continue
        options = [w.split("=", 1)[0] for w in rest if re.match(r"^--?[A-Za-z]", w)]
        for option in options:
            if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text):
                problems.append(f"{page.where(line)}: {prefix} has no option {option}")
        named_only = not rest
        if not named_only and program[0] != "npx" and not {"--help", "-h"} & set(options):
            for group in _required(text):
                if not set(group) & set(options):
                    problems.append(f"{page.where(line)}: `{prefix}` needs {' or '.join(group)}")
    return problems


# --------------------------------------------------------------------------------------- ports


@dataclass(frozen=True)
class PortFacts:
    """Each port a page may name, with where it comes from."""

    elasticache: int
    box_redis: int
    known: Mapping[int, str]


def port_facts(root: Path = ROOT) -> PortFacts:
    def constant(path: str, pattern: str) -> int:
        found = re.search(pattern, (root / path).read_text(), re.MULTILINE)
        assert found, f"{pattern} not found in {path}"
        return int(found.group(1))

    elasticache = constant("infra/constructs/redis_cluster.py", r"^REDIS_PORT = (\d+)")
    box_redis = constant("infra/constructs/web_hosts.py", r"^LOCAL_REDIS_PORT = (\d+)")
    known = {
        elasticache: "the ElastiCache groups (redis_cluster.REDIS_PORT)",
        box_redis: "the box's Redis (web_hosts.LOCAL_REDIS_PORT)",
        constant("infra/constructs/fargate_service.py", r"^CONTAINER_PORT = (\d+)"): "container",
        constant("runtime/service/deploy/provision.sh", r"LISTEN=(\d+)"): "the box's nginx",
        constant("infra/constructs/load_balancer.py", r"port=(443)"): "the ALBs' HTTPS listener",
        constant("scripts/run_local.py", r'"--port", type=int, default=(\d+)'): "run-local",
        26379: "Sentinel's own port (the service's REDIS_SENTINEL_HOSTS example)",
    }
    return PortFacts(elasticache, box_redis, known)


_LOOPBACK = ("127.", "localhost")


def check_ports(page: Page, facts: PortFacts) -> list[str]:
    problems = []
    for span in page.spans:
        for scheme, host, port_text in _URL_PORT.findall(span.text):
            port = int(port_text)
            where = page.where(span.line)
            if host.startswith(_LOOPBACK):
                continue
            if scheme == "rediss" and port != facts.elasticache:
                problems.append(
                    f"{where}: {scheme}://{host}:{port}: TLS Redis (ElastiCache)"
                    f" listens on {facts.elasticache}"
                )
            elif scheme == "redis" and port != facts.box_redis:
                problems.append(
                    f"{where}: {scheme}://{host}:{port}: the box's Redis listens"
                    f" on {facts.box_redis}"
                )
            elif scheme.startswith("http") and port not in facts.known:
                problems.append(f"{where}: port {port} is none of the ports the code uses")
        if span.kind == "prose":
            for port_text in _PORT_WORD.findall(span.text):
                if int(port_text) not in facts.known:
                    problems.append(
                        f"{page.where(span.line)}: port {port_text} is none of the"
                        " ports the code uses"
                    )
    return problems


# ------------------------------------------------------------------------------------- figures

_OPERATORS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


@dataclass(frozen=True)
class FigureFacts:
    cost: Mapping[str, Any]
    prices: Mapping[str, Any]

    def price(self, key: str) -> float:
        return float(self.prices["prices"][key]["usd"])

    def lookup(self, path: str) -> float:
        node: Any = self.cost
        for part in path.split("."):
            node = node[part]
        return float(node)

    def evaluate(self, expression: str) -> float:
        tree = ast.parse(expression, mode="eval")
        return self._value(tree.body)

    def _value(self, node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](self._value(node.left), self._value(node.right))
        if isinstance(node, ast.Name) and node.id == "HOURS":
            return float(HOURS)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"price", "cost"}
            and len(node.args) == 1
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            key = node.args[0].value
            return self.price(key) if node.func.id == "price" else self.lookup(key)
        raise ValueError(f"unsupported in a figure expression: {ast.unparse(node)}")


def check_figures(page: Page, facts: FigureFacts) -> list[str]:
    """Every dollar figure outside code carries its expression and equals it as written."""
    problems = []
    for number, line in page.lines:
        prose = _INLINE.sub(lambda m: " " * len(m.group(0)), line)
        for match in _FIGURE.finditer(prose):
            written, expression = match.group(1), match.group(3)
            where = page.where(number)
            if expression is None:
                problems.append(f"{where}: ${written} has no <!-- $ expression --> to check it")
                continue
            try:
                value = facts.evaluate(expression)
            except (ValueError, KeyError, SyntaxError) as error:
                problems.append(f"{where}: ${written}: cannot evaluate {expression!r}: {error}")
                continue
            decimals = len(written.split(".", 1)[1]) if "." in written else 0
            claimed = float(written.replace(",", ""))
            if round(value, decimals) != round(claimed, decimals):
                problems.append(f"{where}: ${written} but {expression} = {value:.{decimals}f}")
    return problems


def load_prices(root: Path = ROOT) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((root / "scripts/prices/us-east-1.json").read_text())
    return result
