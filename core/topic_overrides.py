"""Per-topic Kafka config overrides (``TRACEHOUSE_KAFKA_TOPIC_OVERRIDES``, kafka.topic_overrides).

Grammar: comma-separated entries ``<topic>.<config>=<value>``, where ``<topic>`` is a
``topics`` key (``raw_spans``, ``sink_dlq``, ...) or ``decisions`` (the streams decisions
log), e.g. ``raw_spans.retention.ms=172800000,sink_dlq.retention.ms=-1``. Kafka spells a
two-policy ``cleanup.policy`` with a comma (``compact,delete``), so a part without ``=`` right
after a ``cleanup.policy`` entry continues its value. Only the configs below are accepted,
each with its values checked, so a typo fails at start instead of at topic creation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

DECISIONS = "decisions"

_POLICIES = ("delete", "compact")


def _int_at_least(lo: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            n = int(value)
        except ValueError:
            return f"{value!r} is not an integer"
        if n < lo or n > 2**63 - 1:
            return f"{value} is not in {lo}..{2**63 - 1}"
        return None

    return check


def _retention(value: str) -> str | None:
    problem = _int_at_least(-1)(value)
    if problem is None and int(value) == 0:
        return "0 would delete every record at once (-1: keep forever)"
    return problem


def check_retention_ms(value: int) -> str | None:
    """The settings check of a retention in ms (-1 forever; 0 is refused)."""
    return _retention(str(value))


def _policy(value: str) -> str | None:
    parts = value.split(",")
    if not parts or any(p not in _POLICIES for p in parts) or len(set(parts)) != len(parts):
        return f"{value!r} must be delete, compact or compact,delete"
    return None


CONFIG_CHECKS: dict[str, Callable[[str], str | None]] = {
    "retention.ms": _retention,
    "retention.bytes": _int_at_least(-1),
    "cleanup.policy": _policy,
    "min.insync.replicas": _int_at_least(1),
    "max.message.bytes": _int_at_least(1024),
    "segment.ms": _int_at_least(1),
    "segment.bytes": _int_at_least(14),
}


def _entries(value: str) -> list[str]:
    out: list[str] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        if "=" not in part and out and out[-1].split("=", 1)[0].endswith(".cleanup.policy"):
            out[-1] += "," + part
        else:
            out.append(part)
    return out


def parse_overrides(value: str) -> dict[str, dict[str, str]]:
    """``{topic key: {config: value}}`` of a value :func:`checker` accepted."""
    out: dict[str, dict[str, str]] = {}
    for entry in _entries(value):
        name, raw = entry.split("=", 1)
        topic, key = name.split(".", 1)
        out.setdefault(topic, {})[key] = raw.strip()
    return out


def checker(topic_keys: Iterable[str]) -> Callable[[str], str | None]:
    """The settings check of the override list, for these ``topics`` keys plus decisions."""
    known = (*topic_keys, DECISIONS)

    def check(value: str) -> str | None:
        problems = []
        seen: set[str] = set()
        for entry in _entries(value):
            name, sep, raw = entry.partition("=")
            topic, dot, key = name.strip().partition(".")
            if not sep or not dot:
                problems.append(f"{entry!r} is not <topic>.<config>=<value>")
                continue
            if topic not in known:
                problems.append(f"{entry!r}: unknown topic {topic!r} (one of {', '.join(known)})")
                continue
            if key not in CONFIG_CHECKS:
                problems.append(
                    f"{entry!r}: config {key!r} is not one of {', '.join(CONFIG_CHECKS)}"
                )
                continue
            if name in seen:
                problems.append(f"{entry!r}: {name} is given twice")
            seen.add(name)
            problem = CONFIG_CHECKS[key](raw.strip())
            if problem is not None:
                problems.append(f"{entry!r}: {problem}")
            elif topic == DECISIONS and key == "cleanup.policy" and "compact" in raw:
                problems.append(
                    f"{entry!r}: the decisions log must not be compacted (its records are "
                    "deltas keyed by partition; compaction keeps only the last)"
                )
        return "; ".join(problems) or None

    return check
