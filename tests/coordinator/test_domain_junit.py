"""JUnit XML parsing for the Test step."""

from __future__ import annotations

import pytest

from coordinator.domain.steps.junit import ReportError, TestReport, parse_junit


def test_counts_failures_errors_and_skips_in_nested_suites() -> None:
    report = parse_junit(b"""<?xml version="1.0"?>
<testsuites><testsuite name="a">
  <testcase classname="m.T" name="ok"/>
  <testcase classname="m.T" name="bad"><failure message="assert 1 == 2">long trace</failure></testcase>
  <testsuite name="inner">
    <testcase name="boom"><error>RuntimeError: x
more</error></testcase>
    <testcase name="later"><skipped message="slow"/></testcase>
  </testsuite>
</testsuite></testsuites>""")
    assert (report.total, report.failed, report.skipped, report.passed) == (4, 2, 1, 1)
    assert report.failing == ["m.T.bad: assert 1 == 2", "boom: RuntimeError: x"]
    assert report.summary() == "4 tests, 2 failed, 1 skipped"


def test_summary_when_all_pass() -> None:
    assert parse_junit(b"<testsuite><testcase name='a'/></testsuite>").summary() == "1 test passed"
    assert TestReport().summary() == "0 tests passed"


@pytest.mark.parametrize("doc", [
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><testsuite>&lol;</testsuite>',
    b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><testsuite/>',
])
def test_documents_with_a_dtd_are_refused(doc: bytes) -> None:
    with pytest.raises(ReportError, match="DOCTYPE"):
        parse_junit(doc)


def test_not_xml_is_a_clear_error() -> None:
    with pytest.raises(ReportError, match="not valid XML"):
        parse_junit(b"<testsuite><testcase>")
