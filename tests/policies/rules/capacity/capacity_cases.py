"""What the SG-CAP rule tests share: an SLO, and traffic short enough to simulate in milliseconds."""

SLO = ("slo.p99_ms=500.0", "slo.error_rate=0.01")
HALF_HOUR = ("traffic=constant", "traffic.minutes=30")
ROOMY_FUNCTION = ("function.reserved_concurrency=400",)  # Lambda out of the way: at most 4,000 a second
LIGHT_DAY = (*SLO, *HALF_HOUR, "traffic.rps=1.0")  # a day within the SLO


def assert_names_the_minute_and_the_cause(message: str, cause: str) -> None:
    assert "misses the SLO" in message and "first at minute" in message and f"by {cause}" in message, message
