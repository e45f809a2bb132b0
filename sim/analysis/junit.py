"""JUnit XML of an ``orchestra check``, so CI shows each scenario x figure as a test case."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from sim.analysis.regress import CheckResult, Judgement
from sim.metrics.store import atomic_write_bytes

__all__ = ["junit_xml", "write_junit"]


def junit_xml(result: CheckResult, elapsed_s: float) -> bytes:
    """One ``testcase`` per scenario × figure; regressions and failed runs as ``failure``."""
    suites = ET.Element("testsuites", name="orchestra check")
    by_scenario: dict[str, list[Judgement]] = {}
    for j in result.judgements:
        by_scenario.setdefault(j.scenario, []).append(j)
    for scenario in sorted({*by_scenario, *result.errors}):
        cases = by_scenario.get(scenario, [])
        error = result.errors.get(scenario)
        failures = sum(j.verdict in ("worse", "missing") for j in cases) + (error is not None)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"orchestra check {scenario}",
            tests=str(len(cases) + (error is not None)),
            failures=str(failures),
            errors="0",
            time=f"{elapsed_s:.3f}",
        )
        if error is not None:
            case = ET.SubElement(suite, "testcase", classname=f"check.{scenario}", name="run")
            ET.SubElement(case, "failure", message=f"{scenario}: run failed: {error}").text = error
        for j in cases:
            case = ET.SubElement(
                suite, "testcase", classname=f"check.{scenario}", name=j.figure, time="0"
            )
            if j.verdict in ("worse", "missing"):
                failure = ET.SubElement(case, "failure", message=j.message(), type=j.verdict)
                failure.text = j.message()
            else:
                ET.SubElement(case, "system-out").text = j.message()
    ET.indent(suites)
    xml: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return xml


def write_junit(path: Path, result: CheckResult, elapsed_s: float) -> None:
    atomic_write_bytes(path, junit_xml(result, elapsed_s))
