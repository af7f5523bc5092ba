"""The repository stands alone: its documents link only to files it holds, and the
design document names every command and every setting the code has."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sisock.cli import COMMANDS
from sisock.config import VARIABLES

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "deploy").rglob("README.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_links_point_inside_the_repository(document):
    for target in LINK.findall(document.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a web address, or a heading of the same document
        path = (document.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(REPO) and path.exists(), f"{document.name} links to {target}, not in the repository"


def test_no_document_sends_the_reader_outside_the_repository():
    for document in DOCUMENTS:
        assert "../shared" not in document.read_text(), document


def test_the_design_names_every_command_and_setting():
    design = (REPO / "docs/design.md").read_text()
    for command in COMMANDS:
        assert f"`{command}`" in design or f"sisock {command}" in design, command
    for variable in VARIABLES:
        assert f"`{variable}`" in design, variable


def test_the_openapi_copy_is_the_plugin_file_with_its_source_and_licence():
    path = REPO / "docs/grafana-json-datasource-openapi.yaml"
    header = path.read_text().split("openapi:", 1)[0]
    assert "https://github.com/simPod/GrafanaJsonDatasource" in header and "MIT" in header
    spec = yaml.safe_load(path.read_text())
    assert spec["info"]["title"] == "simPod JSON Datasource API"
    assert {"/", "/metrics", "/query"} <= set(spec["paths"])


def test_a_test_run_names_its_ten_slowest_tests():
    """pytest.ini asks for durations: a slow test cannot hide in a long run."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                             "tests/test_docs.py::test_no_document_sends_the_reader_outside_the_repository"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "slowest 10 durations" in result.stdout
