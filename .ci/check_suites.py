"""Fail CI unless the suites that need outside parts really ran: PostgreSQL, the official Inngest
SDKs (interop) and Chromium (browser). Reads pytest's JUnit report."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

SUITES = {
    "the PostgreSQL test suite": lambda case: "[postgres" in case.get("name", ""),
    "the official-SDK interop tests": lambda case: case.get("classname", "").startswith("tests.interop."),
    "the dashboard's browser tests": lambda case: case.get("classname", "").startswith("tests.browser."),
}


def main(path: str) -> int:
    cases = list(ET.parse(path).getroot().iter("testcase"))
    failed = False
    for suite, member in SUITES.items():
        ran = [c for c in cases if member(c)]
        skipped = [c for c in ran if c.find("skipped") is not None]
        if not ran or skipped:
            why = "no test of it ran" if not ran else f"{len(skipped)} of its {len(ran)} tests were skipped"
            print(f"CI: {suite} did not run: {why}", file=sys.stderr)
            failed = True
        else:
            print(f"CI: {suite}: {len(ran)} tests ran")
    if not cases:
        print("CI: no tests ran", file=sys.stderr)
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
