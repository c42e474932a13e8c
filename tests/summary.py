#!/usr/bin/python3
"""Print one line counting the test cases of the last `meson test` run.

Usage: summary.py [BUILD_DIR ...]

Reads BUILD_DIR/meson-logs/testlog.json (one JSON object per meson test) of
each build directory and adds them up.
Each C unit test counts as one case. The meson test named `integration` runs
pytest and is replaced by its per-case counts from the JUnit XML that pytest
wrote (default BUILD_DIR/meson-logs/integration.xml).

Skipped cases, if any, are counted on the line before; the last line printed
is exactly `N passed, N failed`. Exit status: 0 when nothing failed and at
least one case ran, 1 otherwise.
"""

import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET

INTEGRATION = "integration"

PASSED = {"OK", "EXPECTEDFAIL"}
SKIPPED = {"SKIP"}


def is_integration(name):
    # With several suites meson names a test "project:suite / name".
    return name == INTEGRATION or name.endswith(" / " + INTEGRATION)


def read_testlog(path):
    entries = []
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError as e:
                    print(f"summary: {path}:{lineno}: {e}", file=sys.stderr)
    except FileNotFoundError:
        print(f"summary: {path}: not found (did meson test run?)", file=sys.stderr)
    return entries


def junit_counts(path):
    """Return (passed, failed, skipped, failed case names) or None."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        print(f"summary: {path}: not found", file=sys.stderr)
        return None
    except ET.ParseError as e:
        print(f"summary: {path}: {e}", file=sys.stderr)
        return None

    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    tests = failures = errors = skipped = 0
    for s in suites:
        tests += int(s.get("tests", 0))
        failures += int(s.get("failures", 0))
        errors += int(s.get("errors", 0))
        skipped += int(s.get("skipped", 0))

    names = []
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            cls = case.get("classname", "")
            names.append(f"{cls}::{case.get('name', '?')}" if cls else case.get("name", "?"))

    passed = max(tests - failures - errors - skipped, 0)
    return passed, failures + errors, skipped, names


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build_dirs", nargs="*", default=["build"])
    args = ap.parse_args()

    passed = failed = skipped = 0
    failures = []
    for build_dir in args.build_dirs:
        p, f, s, names = count_build(build_dir)
        passed += p
        failed += f
        skipped += s
        failures += [f"{build_dir}: {n}" for n in names]

    for f in failures:
        print(f"FAILED {f}")

    if skipped:
        print(f"{skipped} skipped (not counted below)")
    print(f"{passed} passed, {failed} failed", flush=True)

    return 0 if failed == 0 and passed + failed > 0 else 1


def count_build(build_dir):
    logs = os.path.join(build_dir, "meson-logs")
    junit = os.path.join(logs, INTEGRATION + ".xml")

    passed = failed = skipped = 0
    failures = []
    for entry in read_testlog(os.path.join(logs, "testlog.json")):
        name = entry.get("name", "?")
        result = entry.get("result", "?")

        if is_integration(name):
            counts = junit_counts(junit)
            if counts is not None:
                p, f, s, names = counts
                passed += p
                failed += f
                skipped += s
                failures += [f"integration: {n}" for n in names]
                # pytest failed outside any test case (collection error,
                # crash, no tests collected): that is one more failure.
                if result not in PASSED | SKIPPED and f == 0:
                    failed += 1
                    failures.append(f"integration: pytest exited with {result}")
                continue
            # No usable XML: count the meson test itself.

        if result in PASSED:
            passed += 1
        elif result in SKIPPED:
            skipped += 1
        else:
            failed += 1
            failures.append(f"{name}: {result}")
    return passed, failed, skipped, failures


if __name__ == "__main__":
    sys.exit(main())
