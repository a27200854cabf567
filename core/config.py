"""Strict configuration: typed, range-checked options from ``TRACEHOUSE_*`` variables and YAML.

Every option is declared once, on its :class:`~core.settings.Settings` (or ``Topics``)
field, with :func:`setting`: default, YAML section and key, documentation and the values it
accepts. The environment variable is derived from the field name (``TRACEHOUSE_<FIELD>``,
``TRACEHOUSE_TOPIC_<NAME>`` for topics). :func:`load` reads the defaults, then the YAML file
(``--config FILE`` or ``TRACEHOUSE_CONFIG``), then the environment, and rejects anything it
does not understand with a :class:`ConfigError` naming the variable or key: unknown names
(with the closest known ones), non-boolean words, numbers out of range, malformed addresses.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ENV_PREFIX = "TRACEHOUSE_"
TOPIC_ENV_PREFIX = "TRACEHOUSE_TOPIC_"
CONFIG_ENV = "TRACEHOUSE_CONFIG"
# YAML sections, in the order the example file lists them.
SECTIONS = ("kafka", "clickhouse", "ingest", "streams", "sink", "query", "topics")

# TRACEHOUSE_* variables that are not settings, so strictness does not reject them.
NOT_SETTINGS = {
    CONFIG_ENV: "the YAML config file",
    # Knobs of the test suite itself, which hands its environment to the processes it starts.
    "TRACEHOUSE_FUZZ_EXAMPLES": "property-test example count (tests)",
    "TRACEHOUSE_BIG_TRACE_REPORT": "report file of tests/integration/test_query_big_trace.py",
    "TRACEHOUSE_JAEGER_UI_DIR": "a Jaeger UI build for tests/integration/test_jaeger_ui_real.py",
}

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})


class ConfigError(ValueError):
    """Invalid configuration; each problem names the variable or the file key it comes from."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class _Bad(Exception):
    """One value's problem, before it is prefixed with where the value came from."""


Check = Callable[[Any], str | None]  # the problem with a (typed, in-range) value, or None


@dataclass(frozen=True)
class Option:
    section: str
    key: str
    doc: str
    kind: type
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # lo itself is not allowed (e.g. timeouts > 0)
    choices: tuple[str, ...] = ()
    check: Check | None = None
    list_ok: bool = False  # YAML may give a list of strings, joined with ","

    def accepted(self) -> str:
        """The accepted values, for messages and the example file."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.lo is None and self.hi is None:
            return ""
        if self.lo is not None and self.hi is not None and not self.lo_open:
            return f"{_num(self.lo)}..{_num(self.hi)}"
        low = "" if self.lo is None else f"{'>' if self.lo_open else '>='} {_num(self.lo)}"
        high = "" if self.hi is None else f"<= {_num(self.hi)}"
        return " and ".join(p for p in (low, high) if p)


def setting(
    default: Any,
    section: str,
    key: str,
    doc: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    choices: tuple[str, ...] = (),
    check: Check | None = None,
    list_ok: bool = False,
) -> Any:
    """A dataclass field declaring one option (typed ``Any`` so ``x: int = setting(...)``)."""
    assert section in SECTIONS, section
    option = Option(section, key, doc, type(default), lo, hi, lo_open, choices, check, list_ok)
    return dataclasses.field(default=default, metadata={"option": option})


@dataclass(frozen=True)
class Binding:
    """Where one option lives: its field (``topic`` for a Topics field), env var and key."""

    field: str
    topic: bool
    env: str
    option: Option
    default: Any

    @property
    def path(self) -> str:
        return f"{self.option.section}.{self.option.key}"


def bindings(settings_cls: type, topics_cls: type) -> list[Binding]:
    out = []
    for cls, topic, prefix in (
        (settings_cls, False, ENV_PREFIX),
        (topics_cls, True, TOPIC_ENV_PREFIX),
    ):
        for f in fields(cls):
            option = f.metadata.get("option")
            if option is None:
                continue
            out.append(Binding(f.name, topic, prefix + f.name.upper(), option, f.default))
    return sorted(out, key=lambda b: SECTIONS.index(b.option.section))  # stable within one


# --- value checks -----------------------------------------------------------------------------

_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)"
_HOST_PORT = re.compile(rf"({_HOST}):([0-9]+)")
_BIND_HOST = re.compile(r"[A-Za-z0-9._:-]+|\[[0-9A-Fa-f:.]+\]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_GROUP = re.compile(r"\S+")


def _port_problem(port: str) -> str | None:
    return None if 1 <= int(port) <= 65535 else f"port {port} is not in 1..65535"


def check_bootstrap(value: str) -> str | None:
    """``host:port[,host:port...]``: Kafka's bootstrap.servers."""
    servers = [s.strip() for s in value.split(",")]
    if not value.strip() or not all(servers):
        return "expected host:port[,host:port...]"
    for server in servers:
        m = _HOST_PORT.fullmatch(server)
        if not m:
            return f"{server!r} is not host:port (expected host:port[,host:port...])"
        if problem := _port_problem(m.group(2)):
            return f"{server!r}: {problem}"
    return None


def check_clickhouse_url(value: str) -> str | None:
    """``http://host:port`` or ``https://host:port``: what core.clickhouse.connect()
    understands, nothing more (credentials have their own settings, never the URL)."""
    try:
        url = urlsplit(value)
        port = url.port
    except ValueError as exc:
        return f"{value!r} is not a valid URL ({exc})"
    if url.scheme not in ("http", "https"):
        return f"{value!r} must be an http:// or https:// URL (http://host:port)"
    if not url.hostname:
        return f"{value!r} has no host (expected http://host:port)"
    if port is None:
        return f"{value!r} has no port (expected http://host:port, e.g. 8123, or https 8443)"
    if not 1 <= port <= 65535:
        return f"{value!r}: port {port} is not in 1..65535"
    if url.username or url.password:
        return (
            f"{value!r}: put no credentials in the URL; use TRACEHOUSE_CLICKHOUSE_USER / "
            "TRACEHOUSE_CLICKHOUSE_PASSWORD"
        )
    if url.path.strip("/") or url.query or url.fragment:
        return f"{value!r}: only http(s)://host:port is understood (no path or query)"
    return None


def check_bind_host(value: str) -> str | None:
    if _BIND_HOST.fullmatch(value):
        return None
    return f"{value!r} is not a host name or address (e.g. 127.0.0.1 or 0.0.0.0)"


def check_identifier(value: str) -> str | None:
    if _IDENTIFIER.fullmatch(value):
        return None
    return f"{value!r} is not a ClickHouse database name (letters, digits, _)"


def check_topic(value: str) -> str | None:
    if _TOPIC.fullmatch(value) and value not in (".", ".."):
        return None
    return f"{value!r} is not a Kafka topic name (1-249 of letters, digits, '.', '_', '-')"


def check_group(value: str) -> str | None:
    return None if _GROUP.fullmatch(value) else f"{value!r} is not a consumer group name"


def check_names_list(allowed: Iterable[str]) -> Check:
    """A comma list of distinct names out of ``allowed``, at least one."""
    allowed = tuple(allowed)

    def check(value: str) -> str | None:
        names = [n.strip() for n in value.split(",")]
        if not value.strip() or not all(names):
            return f"expected a comma list of {', '.join(allowed)}"
        unknown = [n for n in names if n not in allowed]
        if unknown:
            return f"unknown {', '.join(unknown)}; choose from {', '.join(allowed)}"
        if len(set(names)) != len(names):
            return "names a stream twice"
        return None

    return check


# --- parsing ----------------------------------------------------------------------------------


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _has_kind(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


def _kind_name(kind: type) -> str:
    return {bool: "bool", int: "int", float: "float", str: "string"}[kind]


def parse_env(option: Option, raw: str) -> Any:
    """An environment variable's text as the option's type (strict: 'ture' is no boolean)."""
    text = raw.strip()
    if option.kind is bool:
        word = text.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise _Bad(f"cannot coerce {raw!r} to bool (use true/false, yes/no, on/off or 1/0)")
    if option.kind is int:
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise _Bad(f"cannot coerce {raw!r} to int")
        return int(text)
    if option.kind is float:
        try:
            value = float(text)
        except ValueError:
            raise _Bad(f"cannot coerce {raw!r} to float") from None
        if not math.isfinite(value):
            raise _Bad(f"cannot coerce {raw!r} to a finite float")
        return value
    return raw


def parse_yaml(option: Option, value: Any) -> Any:
    """A YAML value as the option's type: YAML types must match (no quoted numbers)."""
    kind = option.kind
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise _Bad(f"expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Bad(f"expected an integer, got {value!r}")
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _Bad(f"expected a finite number, got {value!r}")
            return float(value)
        raise _Bad(f"expected a number, got {value!r}")
    if isinstance(value, str):
        return value
    if option.list_ok and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    raise _Bad(
        f"expected a string{' or a list of strings' if option.list_ok else ''}, got {value!r}"
    )


def check_value(option: Option, value: Any) -> None:
    if option.kind in (int, float):
        low_bad = option.lo is not None and (
            value <= option.lo if option.lo_open else value < option.lo
        )
        high_bad = option.hi is not None and value > option.hi
        if low_bad or high_bad:
            raise _Bad(f"{_num(value)} is out of range (must be {option.accepted()})")
    if option.choices and value not in option.choices:
        raise _Bad(f"{value!r} is not {option.accepted()}")
    if option.check and (problem := option.check(value)):
        raise _Bad(problem)


def _suggest(name: str, known: Iterable[str], prefix: str = "") -> str:
    close = [prefix + c for c in difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)]
    if not close:
        return ""
    also = f" (also close: {', '.join(close[1:])})" if close[1:] else ""
    return f"; did you mean {close[0]}?{also}"


# --- loading ----------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_file(path: str | Path, binds: list[Binding]) -> tuple[dict[str, Any], list[str]]:
    """Values by field (``topics.<name>`` for topics) from a YAML file, and its problems."""
    where = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        return {}, [f"config file {where}: cannot read it ({exc.strerror or exc})"]
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        return {}, [f"config file {where}: not valid YAML: {exc}"]
    if doc is None:
        return {}, []
    if not isinstance(doc, dict):
        return {}, [f"config file {where}: expected sections (kafka:, clickhouse:, ...) at the top"]
    by_path = {(b.option.section, b.option.key): b for b in binds}
    sections = [s for s in SECTIONS if any(b.option.section == s for b in binds)]
    values: dict[str, Any] = {}
    problems: list[str] = []
    for section, body in doc.items():
        if section not in sections:
            problems.append(
                f"{where}: {section}: unknown section{_suggest(str(section), sections)}"
                f" (sections: {', '.join(sections)})"
            )
            continue
        if body is None:
            continue
        if not isinstance(body, dict):
            problems.append(f"{where}: {section}: expected a mapping of options, got {body!r}")
            continue
        keys = [k for s, k in by_path if s == section]
        for key, value in body.items():
            bind = by_path.get((section, key))
            if bind is None:
                problems.append(
                    f"{where}: {section}.{key}: unknown option{_suggest(str(key), keys)}"
                )
                continue
            try:
                parsed = parse_yaml(bind.option, value)
                check_value(bind.option, parsed)
            except _Bad as exc:
                problems.append(f"{where}: {bind.path}: {exc}")
                continue
            values[_slot(bind)] = parsed
    return values, problems


def read_env(env: Mapping[str, str], binds: list[Binding]) -> tuple[dict[str, Any], list[str]]:
    """Values by field from ``TRACEHOUSE_*`` variables; unknown names are problems."""
    by_env = {b.env: b for b in binds}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS:
            continue
        bind = by_env.get(name)
        if bind is None:
            # Compared without the common prefix, which would make everything look close.
            short = [n.removeprefix(ENV_PREFIX) for n in by_env]
            hint = _suggest(name.removeprefix(ENV_PREFIX), short, ENV_PREFIX)
            problems.append(f"{name}: unknown setting{hint}")
            continue
        try:
            parsed = parse_env(bind.option, env[name])
            check_value(bind.option, parsed)
        except _Bad as exc:
            problems.append(f"{name}: {exc}")
            continue
        values[_slot(bind)] = parsed
    return values, problems


def _slot(bind: Binding) -> str:
    return f"topics.{bind.field}" if bind.topic else bind.field


def load(
    settings_cls: type,
    topics_cls: type,
    env: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> Any:
    """Defaults, then the YAML file (``config_file`` or ``$TRACEHOUSE_CONFIG``), then env."""
    env = dict(os.environ if env is None else env)
    binds = bindings(settings_cls, topics_cls)
    values: dict[str, Any] = {}
    problems: list[str] = []
    path = config_file or env.get(CONFIG_ENV) or None
    if path:
        file_values, file_problems = read_file(path, binds)
        values.update(file_values)
        problems += file_problems
    env_values, env_problems = read_env(env, binds)
    values.update(env_values)
    problems += env_problems
    if problems:
        raise ConfigError(problems)
    topics = {k.removeprefix("topics."): v for k, v in values.items() if k.startswith("topics.")}
    flat = {k: v for k, v in values.items() if not k.startswith("topics.")}
    return settings_cls(topics=topics_cls(**topics), **flat)


def validate(settings: Any, topics_cls: type) -> None:
    """Every field's value (e.g. of a Settings built in code) against its declaration."""
    problems = []
    for bind in bindings(type(settings), topics_cls):
        value = getattr(settings.topics if bind.topic else settings, bind.field)
        try:
            if not _has_kind(value, bind.option.kind):
                raise _Bad(f"expected {_kind_name(bind.option.kind)}, got {value!r}")
            check_value(bind.option, value)
        except _Bad as exc:
            problems.append(f"{bind.env} ({bind.path}): {exc}")
    if problems:
        raise ConfigError(problems)


# --- rendering --------------------------------------------------------------------------------


HEADER = """\
# tracehouse configuration file. `tracehouse config --defaults` prints every option with its
# default (deploy/tracehouse.example.yaml is that output; a test fails if it drifts);
# `tracehouse config` prints the configuration in effect.
# Use: tracehouse --config FILE <command>, or TRACEHOUSE_CONFIG=FILE. TRACEHOUSE_* environment
# variables (named in [brackets]) override the file. Unknown sections or keys, wrong types and
# out-of-range values stop every command with a message naming the key.
"""


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        # YAML 1.1 (PyYAML) reads 1e-05 as a string: its floats need a dot before the exponent.
        return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text
    return json.dumps(value)  # a JSON string is a valid double-quoted YAML scalar


def render_yaml(settings: Any, topics_cls: type, docs: bool = True) -> str:
    """``settings`` as a sectioned YAML config file (with every option's doc, env var, range)."""
    binds = bindings(type(settings), topics_cls)
    lines: list[str] = HEADER.splitlines() if docs else []
    section = None
    for bind in binds:
        if bind.option.section != section:
            section = bind.option.section
            if lines:
                lines.append("")
            lines.append(f"{section}:")
        value = getattr(settings.topics if bind.topic else settings, bind.field)
        if docs:
            accepted = bind.option.accepted()
            note = f"{bind.option.doc} [{bind.env}{'; ' + accepted if accepted else ''}]"
            lines += ["  # " + line for line in textwrap.wrap(note, 94)]
        lines.append(f"  {bind.option.key}: {_yaml_scalar(value)}")
    return "\n".join(lines) + "\n"
