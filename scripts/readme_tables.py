"""Print the README's generated tables: `python scripts/readme_tables.py markers|settings`.

The marker table comes from workers.risk.MARKER_RULES with the default thresholds and weights,
the settings table from config.settings.Settings; tests/test_readme.py fails when the README
holds anything else.
"""

from __future__ import annotations

import sys

from config.settings import Settings
from workers.risk import Comparison, MarkerRule, RiskRules

_WHEN = {
    Comparison.AT_LEAST: "`{feature}` ≥ {threshold:g}",
    Comparison.BELOW: "`{feature}` < {threshold:g}",
    Comparison.SHARE_AT_LEAST: "lower bound of `{feature}` ≥ {threshold:g}",
}


def _condition(rule: MarkerRule, threshold: float) -> str:
    text = _WHEN[rule.comparison].format(feature=rule.feature, threshold=threshold)
    if rule.evidence:
        text += f", with ≥ {rule.min_evidence} `{rule.evidence}`"
    if rule.unless:
        text += "; not counted when " + " or ".join(f"`{name}`" for name in rule.unless) + " fires"
    return text


def marker_table() -> str:
    """The README's marker table: one row per rule, with its default threshold and weight."""
    rules = RiskRules.from_settings(Settings())
    lines = [
        "| marker | family | fires when (defaults) | points | what it reads |",
        "| --- | --- | --- | ---: | --- |",
    ]
    for marker in rules.markers:
        rule = marker.rule
        family = rule.family.value.replace("_", " ")
        when = _condition(rule, marker.threshold)
        lines.append(f"| `{rule.name}` | {family} | {when} | {marker.weight} | {rule.description} |")
    return "\n".join(lines)


def settings_table() -> str:
    """The README's configuration table: every Settings field, its default and meaning."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, info in Settings.model_fields.items():
        default = "" if info.default is None else info.default
        lines.append(f"| `ECOMRISK_{name.upper()}` | `{default}` | {info.description} |")
    return "\n".join(lines)


if __name__ == "__main__":
    tables = {"markers": marker_table, "settings": settings_table}
    if len(sys.argv) != 2 or sys.argv[1] not in tables:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(tables)}")
    print(tables[sys.argv[1]]())
