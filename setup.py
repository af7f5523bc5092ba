"""Packaging for sisock: one console script, ``sisock``, with a subcommand per component."""
import re
from pathlib import Path

from setuptools import find_packages, setup

# One version: sisock/__init__.py's, which `sisock --version` prints.
VERSION = re.search(r'^__version__ = "([^"]+)"', (Path(__file__).parent / "sisock/__init__.py").read_text(), re.M)[1]

setup(
    name="sisock",
    version=VERSION,
    description="Housekeeping time series of a telescope site, served to Grafana over WAMP",
    python_requires=">=3.9",
    packages=find_packages(include=["sisock", "sisock.*"]),
    package_data={"sisock": ["examples/weather/*.txt"]},
    install_requires=[
        "autobahn>=23.1",
        "twisted>=22.10",
        "txaio>=23.1",
        "cherrypy>=18.8",
        "orjson>=3.9",
        "pymysql>=1.1",
        "python-dotenv>=1.0",
        "spt3g>=1.0",
        "crc32c>=2.3",  # checks a frame the scanner reads without spt3g (sisock/g3/rawframe.py)
        "numpy>=1.24",
        "cryptography>=41",
        "service-identity>=23.1",
        "pyopenssl>=23.2",
        "prometheus-client>=0.17",  # every component's metrics (sisock/metrics/)
    ],
    extras_require={
        "crossbar": ["crossbar>=23.1"],
        # ansible-playbook with its bundled collections, and ansible-lint (tests/test_deploy.py)
        "deploy": ["ansible>=9", "ansible-lint>=24"],
        # hypothesis fuzzes sisock-http from the OpenAPI file (schemathesis needs an idna that crossbar's pin forbids);
        # ruff and mypy check the tree before the tests (`make test`, settings in pyproject.toml)
        "test": [
            "pytest>=8", "pytest-timeout>=2.3", "jsonschema>=4.17", "pyyaml>=6", "hypothesis>=6.100",
            "ruff>=0.6", "mypy>=1.11",
        ],
    },
    entry_points={"console_scripts": ["sisock = sisock.cli:main"]},
)
