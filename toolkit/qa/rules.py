"""QA rules: which checks exist (the catalogue, in code) and their thresholds (``default_rules.toml``).

The catalogue fixes what a check measures, its unit and which way is worse; a rules file may only set
thresholds, severities, image types and ``enabled`` for checks the catalogue knows. So a typo in a rules file
is an error naming its line, never a check that silently does nothing.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ..arguments import is_finite_number
from ..errors import FileNotAccessibleError, ValidationError
from ..vocab import MS_STAGES

Section = Literal["image", "ms", "calibration", "job", "source"]
CheckKind = Literal["above", "below", "stage", "values", "required"]
Severity = Literal["warn", "fail"]
SECTIONS: tuple[Section, ...] = ("image", "ms", "calibration", "job", "source")
ENV_QA_RULES = "CONTIMG_QA_RULES"
MAX_RULES_BYTES = 2**20  # a rules file is a few kB; this keeps a wrong path (a log, a FIFO) from costing much


@dataclass(frozen=True)
class Metric:
    """What one check measures: a column of the metrics frame, its unit and which way is worse."""

    section: Section
    name: str
    kind: CheckKind
    column: str
    description: str
    unit: str = ""
    scale: float = 1.0  # stored value x scale = the value in ``unit`` (thresholds are in ``unit``)
    decimals: int = 2
    json_source: str | None = None  # the JSON column the value comes from, for "not valid JSON" reasons
    false_reason: str = ""  # the reason a "required" check gives when its value is false


CATALOGUE: tuple[Metric, ...] = (
    Metric("image", "rms_noise", "above", "rms_noise_jy", "image noise", "mJy", 1e3, 2),
    Metric("image", "dynamic_range", "below", "dynamic_range", "peak / noise", "", 1.0, 0),
    Metric("image", "beam_major", "above", "beam_major_arcsec", "beam major axis", "arcsec", 1.0, 1),
    Metric("image", "beam_ellipticity", "above", "beam_ellipticity", "1 - minor / major", "", 1.0, 2),
    Metric("image", "num_sources", "below", "num_sources", "sources found in the image", "", 1.0, 0),
    Metric(
        "image",
        "pbcor",
        "required",
        "pb_corrected",
        "primary-beam corrected version exists",
        false_reason="no primary-beam corrected version",
    ),
    Metric("ms", "stage", "stage", "stage", "pipeline stage reached"),
    Metric("ms", "status", "values", "status", "processing status"),
    Metric(
        "ms",
        "cal_applied",
        "required",
        "cal_applied",
        "calibration applied",
        false_reason="calibration not applied",
    ),
    Metric(
        "ms", "stuck", "above", "hours_in_stage", "hours in the current stage while in progress", "h", 1.0, 1
    ),
    Metric(
        "calibration",
        "flagged_fraction",
        "above",
        "flagged_fraction",
        "calibration flagged fraction",
        "%",
        100.0,
        1,
    ),
    Metric("calibration", "k_delay_rms", "above", "k_delay_rms_ns", "K delay rms", "ns", 1.0, 2, "k_metrics"),
    Metric(
        "calibration", "bp_amp_rms", "above", "bp_amp_rms", "bandpass amplitude rms", "", 1.0, 3, "bp_metrics"
    ),
    Metric(
        "calibration",
        "bp_phase_rms",
        "above",
        "bp_phase_rms_deg",
        "bandpass phase rms",
        "deg",
        1.0,
        1,
        "bp_metrics",
    ),
    Metric(
        "calibration",
        "g_amp_scatter",
        "above",
        "g_amp_scatter",
        "gain amplitude scatter",
        "",
        1.0,
        3,
        "g_metrics",
    ),
    Metric("job", "status", "values", "status", "job status in the queue"),
    Metric("job", "duration", "above", "duration_min", "run time", "min", 1.0, 1),
    Metric(
        "source", "failed_images", "above", "failed_image_pct", "measurements on failed images", "%", 1.0, 0
    ),
    Metric(
        "source", "warned_images", "above", "warned_image_pct", "measurements on warned images", "%", 1.0, 0
    ),
    Metric("source", "gap", "above", "gap_ratio", "largest gap / median cadence", "x", 1.0, 1),
    Metric("source", "flux_outliers", "above", "n_flux_outliers", "fluxes > 5 robust sigma off", "", 1.0, 0),
    Metric(
        "source",
        "center_distance",
        "above",
        "max_center_distance_deg",
        "distance from image centre",
        "deg",
        1.0,
        2,
    ),
)
_BY_KEY: dict[tuple[str, str], Metric] = {(m.section, m.name): m for m in CATALOGUE}
_FIELDS: dict[CheckKind, frozenset[str]] = {
    "above": frozenset({"warn", "fail", "enabled", "types"}),
    "below": frozenset({"warn", "fail", "enabled", "types"}),
    "stage": frozenset({"warn", "fail", "enabled"}),
    "values": frozenset({"warn", "fail", "enabled"}),
    "required": frozenset({"severity", "enabled", "types"}),
}


@dataclass(frozen=True)
class Rule:
    """One check with its thresholds. ``warn``/``fail`` are numbers (in the metric's unit), stage names, or
    lists of values, by the metric's kind; either may be None (no such level)."""

    metric: Metric
    warn: Any = None
    fail: Any = None
    severity: Severity = "fail"
    types: tuple[str, ...] | None = None
    enabled: bool = True

    @property
    def name(self) -> str:
        return self.metric.name

    @property
    def key(self) -> str:
        return f"{self.metric.section}.{self.metric.name}"


@dataclass(frozen=True)
class QARules:
    """A full set of checks and thresholds. Start from :meth:`default`, :meth:`load` a TOML file, or
    :meth:`override` some values; every constructor validates."""

    rules: tuple[Rule, ...]
    source: str = "defaults"

    # ------------------------------------------------------------------------------- constructors
    @classmethod
    def default(cls) -> QARules:
        return _DEFAULT

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> QARules:
        """The defaults, with the values a TOML file sets."""
        try:
            file = Path(path).expanduser()
            info = file.stat()
            if not stat.S_ISREG(info.st_mode):
                raise FileNotAccessibleError(f"QA rules file {file} is not a regular file")
            if info.st_size > MAX_RULES_BYTES:
                raise ValidationError(
                    f"QA rules file {file} is {info.st_size:,} bytes; a rules file is at most {MAX_RULES_BYTES:,}"
                )
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotAccessibleError(f"QA rules file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise FileNotAccessibleError(f"QA rules file {path} cannot be read: {exc}") from exc
        except (ValueError, TypeError) as exc:  # a NUL in the path, a path that is not text
            raise ValidationError(f"QA rules path {path!r} is not a usable path: {exc}") from exc
        return _DEFAULT.from_toml(text, source=str(file))

    def from_toml(self, text: str, source: str = "<string>") -> QARules:
        """These rules with the values a TOML text sets; errors name ``source`` and the line."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValidationError(f"{source}: not valid TOML: {exc}") from None
        return self._with(data, source, text)

    def override(self, changes: Mapping[str, Any]) -> QARules:
        """A copy with some values changed: ``{"image.rms_noise": {"fail": 5.0}}`` or the TOML layout
        ``{"image": {"rms_noise": {"fail": 5.0}}}``."""
        nested: dict[str, Any] = {}
        for key, value in changes.items():
            if not isinstance(key, str):
                raise ValidationError(f"QA rule overrides are keyed by 'section.check', not {key!r}")
            section, _, name = key.partition(".")
            if name:
                nested.setdefault(section, {})[name] = value
            else:
                nested.setdefault(section, {}).update(value if isinstance(value, Mapping) else {"": value})
        return self._with(nested, "overrides", None)

    @classmethod
    def resolve(cls, rules: QARules | str | os.PathLike[str] | Mapping[str, Any] | None) -> QARules:
        """What a ``rules=`` argument means: rules as they are, a TOML file, overrides of the defaults, or
        (None) the file named by ``CONTIMG_QA_RULES`` if set, else the defaults."""
        if isinstance(rules, QARules):
            return rules
        if isinstance(rules, str | os.PathLike):
            return cls.load(rules)
        if isinstance(rules, Mapping):
            return _DEFAULT.override(rules)
        if rules is None:
            env = os.environ.get(ENV_QA_RULES)
            return cls.load(env) if env else _DEFAULT
        raise ValidationError(
            f"rules must be QARules, a TOML file path or a mapping of overrides, not {type(rules).__name__}"
        )

    # ------------------------------------------------------------------------------------- access
    def checks(self, *sections: Section) -> list[Rule]:
        """The enabled checks of these sections, in catalogue order."""
        return [r for r in self.rules if r.enabled and r.metric.section in sections]

    def __getitem__(self, key: str) -> Rule:
        for rule in self.rules:
            if rule.key == key:
                return rule
        raise KeyError(f"no QA check {key!r}; known: {', '.join(r.key for r in self.rules)}")

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def describe(self) -> pd.DataFrame:
        """One row per check: what it measures, its unit, which way is worse and its thresholds."""
        return pd.DataFrame(
            [
                {
                    "check": r.key,
                    "measures": r.metric.description,
                    "unit": r.metric.unit,
                    "worse": {"above": "larger", "below": "smaller"}.get(r.metric.kind, r.metric.kind),
                    "warn": r.warn if r.metric.kind != "required" else (r.severity == "warn" or None),
                    "fail": r.fail if r.metric.kind != "required" else (r.severity == "fail" or None),
                    "types": ", ".join(r.types) if r.types else "all",
                    "enabled": r.enabled,
                }
                for r in self.rules
            ]
        )

    def _repr_html_(self) -> str:
        return f"<b>QA rules ({self.source})</b>" + str(self.describe().to_html(index=False))

    # ---------------------------------------------------------------------------------- validation
    def _with(self, data: Mapping[str, Any], source: str, text: str | None) -> QARules:
        by_key = {r.key: r for r in self.rules}
        for section, checks in data.items():
            if section not in SECTIONS:
                raise ValidationError(
                    f"{source}{_line(text, section)}: unknown section [{section}]; known: {', '.join(SECTIONS)}"
                )
            if not isinstance(checks, Mapping):
                raise ValidationError(
                    f"{source}{_line(text, section)}: [{section}] must be a table of checks"
                )
            for name, values in checks.items():
                metric = _BY_KEY.get((section, name))
                where = f"{source}{_line(text, section, name)}"
                if metric is None:
                    known = ", ".join(m.name for m in CATALOGUE if m.section == section)
                    raise ValidationError(
                        f"{where}: unknown check {section}.{name}; known in [{section}]: {known}"
                    )
                if not isinstance(values, Mapping):
                    raise ValidationError(
                        f"{where}: {section}.{name} must be a table such as {{ fail = 3.0 }}"
                    )
                rule = by_key[f"{section}.{name}"]
                for field, value in values.items():
                    at = f"{source}{_line(text, section, name, field)}"
                    rule = _set(rule, field, value, at)
                _check_order(rule, f"{source}{_line(text, section, name)}")
                by_key[rule.key] = rule
        label = source if self.source == "defaults" else f"{self.source} + {source}"
        return QARules(tuple(by_key[r.key] for r in self.rules), label)


def _set(rule: Rule, field: str, value: Any, where: str) -> Rule:
    metric = rule.metric
    allowed = _FIELDS[metric.kind]
    if field not in allowed:
        raise ValidationError(
            f"{where}: {rule.key} has no setting {field!r}; it takes {', '.join(sorted(allowed))}"
        )
    if field == "enabled":
        if not isinstance(value, bool):
            raise ValidationError(f"{where}: {rule.key}.enabled must be true or false, not {value!r}")
        return replace(rule, enabled=value)
    if field == "types":
        if (
            metric.section != "image"
            or not isinstance(value, list)
            or not all(isinstance(v, str) for v in value)
        ):
            raise ValidationError(
                f'{where}: {rule.key}.types must be a list of image types such as ["image"]'
            )
        return replace(rule, types=tuple(value))
    if field == "severity":
        if value not in ("warn", "fail"):
            raise ValidationError(f'{where}: {rule.key}.severity must be "warn" or "fail", not {value!r}')
        return replace(rule, severity=value)
    # warn / fail
    if metric.kind == "stage":
        if value not in MS_STAGES:
            raise ValidationError(
                f"{where}: {rule.key}.{field} must be a stage ({', '.join(MS_STAGES)}), not {value!r}"
            )
    elif metric.kind == "values":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationError(f'{where}: {rule.key}.{field} must be a list of values such as ["failed"]')
        value = tuple(value)
    elif not is_finite_number(value):  # math.isfinite raised OverflowError on 10**400
        raise ValidationError(
            f"{where}: {rule.key}.{field} must be a number{f' (in {metric.unit})' if metric.unit else ''}, "
            f"not {value!r}"
        )
    return replace(rule, **{field: value})


def _check_order(rule: Rule, where: str) -> None:
    """A warn threshold that is already a fail would never show: refuse it rather than grade oddly."""
    if rule.warn is None or rule.fail is None:
        return
    kind = rule.metric.kind
    if (kind == "above" and rule.warn > rule.fail) or (kind == "below" and rule.warn < rule.fail):
        worse = "above" if kind == "above" else "below"
        raise ValidationError(
            f"{where}: {rule.key}: warn ({rule.warn}) must not be {worse} fail ({rule.fail}); "
            f"larger is {'worse' if kind == 'above' else 'better'} for this check"
        )
    if kind == "stage" and MS_STAGES.index(rule.warn) < MS_STAGES.index(rule.fail):
        raise ValidationError(f"{where}: {rule.key}: warn stage {rule.warn} is below fail stage {rule.fail}")


def _line(text: str | None, section: str, name: str | None = None, field: str | None = None) -> str:
    """ ", line N" where a key is set in a TOML text (tomllib reports no positions for valid files)."""
    if text is None:
        return ""
    header = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")
    current = ""
    candidates: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0]
        m = header.match(line)
        if m:
            current = m.group(1).replace(" ", "")
            if field is None and (
                current == f"{section}.{name}" if name else current.split(".", 1)[0] == section
            ):
                candidates.append(number)
            continue
        key = line.split("=", 1)[0].strip() if "=" in line else ""
        if name is None:
            continue
        if (
            (current == f"{section}.{name}" and (field is None or key == field))
            or (current == section and key == name)
            or (current == "" and key in (f"{section}.{name}", f"{section}.{name}.{field}"))
        ):
            candidates.append(number)
    return f", line {candidates[0]}" if candidates else ""


def _default() -> QARules:
    text = resources.files("toolkit.qa").joinpath("default_rules.toml").read_text(encoding="utf-8")
    empty = QARules(tuple(Rule(m) for m in CATALOGUE), "defaults")
    return replace(empty.from_toml(text, source="default_rules.toml"), source="defaults")


_DEFAULT = _default()
