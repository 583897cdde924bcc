import re

import pytest

from training.metrics import (
    METRIC_NAMES,
    TESTING_LOSS,
    metric_line,
    metric_regex,
    parse_metric_lines,
)

# The HPO objective regex of the original project, as conf/hpo holds it.
OBJECTIVE_REGEX = r"Testing Loss: ([0-9\.]+)"


@pytest.mark.parametrize("value", [0.0, 1e-9, 0.123456, 2.5, 1234.5])
def test_objective_regex_captures_the_whole_value(value: float) -> None:
    line = metric_line(TESTING_LOSS, value)
    match = re.search(OBJECTIVE_REGEX, line)
    assert match is not None
    assert match.group(0) == line  # nothing left over: no exponent, no suffix
    assert float(match.group(1)) == pytest.approx(value, abs=1e-6)


def test_every_metric_has_a_matching_definition_regex() -> None:
    for name in METRIC_NAMES:
        found = re.findall(metric_regex(name), metric_line(name, 0.5))
        assert found == ["0.500000"]


def test_metric_regexes_do_not_match_each_other() -> None:
    text = "\n".join(metric_line(name, i / 10) for i, name in enumerate(METRIC_NAMES))
    parsed = parse_metric_lines(text)
    assert parsed == {name: [pytest.approx(i / 10)] for i, name in enumerate(METRIC_NAMES)}


def test_unknown_metric_name_is_refused() -> None:
    with pytest.raises(ValueError, match="Test Loss"):
        metric_line("Test Loss", 1.0)
