"""The alert rules load, pass their promtool tests, and read only metrics our code exports.

promtool comes from Debian's `prometheus` package, which `make setup` installs: a missing
promtool fails these tests rather than skipping them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.prometheus import RULE_TESTS, RULES, RULES_DIR, defined_metric_names


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is not installed: `make setup` installs it (Debian's prometheus package)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, cwd=RULES_DIR)


def alert_names() -> set[str]:
    return set(re.findall(r"^\s*- alert: (\w+)", RULES.read_text(), re.MULTILINE))


def test_promtool_checks_the_rules() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_rule_tests_pass() -> None:
    done = promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_stays_quiet() -> None:
    # rules.test.yml's layout: `alertname:` then `exp_alerts:` on the next line, `[]` when quiet.
    cases = re.findall(r"alertname: (\w+).*\n\s*exp_alerts:[ \t]*(\[\])?", RULE_TESTS.read_text())
    fires = {name for name, quiet in cases if not quiet}
    quiet = {name for name, quiet in cases if quiet}
    assert alert_names() - fires == set(), "alerts never shown firing"
    assert alert_names() - quiet == set(), "alerts never shown quiet"
    assert {name for name, _ in cases} <= alert_names(), "cases for alerts that do not exist"


@pytest.mark.parametrize("path", [RULES, RULE_TESTS], ids=lambda p: p.name)
def test_rules_and_their_tests_name_only_metrics_our_code_defines(path: Path) -> None:
    # A metric renamed in the code and not here would leave an alert that can never fire, and
    # a promtool test that still passes on made-up series.
    used = set(re.findall(r"\bmusicbox_\w+", path.read_text()))
    assert used, "no musicbox metric found"
    assert used - defined_metric_names() == set()
