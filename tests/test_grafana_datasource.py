"""The Grafana datasource the play writes carries sisock-http's credentials and the site CA
in ``secureJsonData`` (rendered by Ansible itself from the role's template)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "deploy/ansible/roles/grafana_provisioning/templates/datasource.yml.j2"
ANSIBLE = Path(sys.executable).parent / "ansible"


def render(tmp_path: Path, **variables) -> dict:
    variables = {"grafana_provisioning_datasource_name": "sisock",
                 "grafana_provisioning_plugin": "simpod-json-datasource",
                 "grafana_provisioning_user": "", "grafana_provisioning_password": "", "grafana_provisioning_token": "",
                 "grafana_provisioning_ca_file": str(tmp_path / "ca.pem"), "ansible_python_interpreter": sys.executable,
                 **variables}
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(variables))
    dest = tmp_path / "sisock.yml"
    result = subprocess.run([str(ANSIBLE), "localhost", "-c", "local", "-i", "localhost,",
                             "-m", "ansible.builtin.template", "-a", f"src={TEMPLATE} dest={dest}", "-e", f"@{extra}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return yaml.safe_load(dest.read_text())["datasources"][0]


def test_basic_auth_and_the_site_ca_go_to_secure_json_data(tmp_path):
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    source = render(tmp_path, grafana_provisioning_url="https://hk-router.site:5000",
                    grafana_provisioning_user="grafana", grafana_provisioning_password='p"a:ss',
                    grafana_provisioning_token="ignored-with-a-user")
    assert source["url"] == "https://hk-router.site:5000"
    assert (source["basicAuth"], source["basicAuthUser"]) == (True, "grafana")
    assert source["jsonData"] == {"tlsAuthWithCACert": True}
    assert source["secureJsonData"] == {"basicAuthPassword": 'p"a:ss',
                                        "tlsCACert": (tmp_path / "ca.pem").read_text().rstrip("\n")}


def test_a_token_alone_is_sent_as_a_bearer_header(tmp_path):
    source = render(tmp_path, grafana_provisioning_url="http://127.0.0.1:5000", grafana_provisioning_token="t0ken")
    assert source["basicAuth"] is False and "basicAuthUser" not in source
    assert source["jsonData"] == {"tlsAuthWithCACert": False, "httpHeaderName1": "Authorization"}
    assert source["secureJsonData"] == {"httpHeaderValue1": "Bearer t0ken"}


def test_loopback_without_credentials_has_no_secrets(tmp_path):
    source = render(tmp_path, grafana_provisioning_url="http://127.0.0.1:5000")
    assert source["basicAuth"] is False and "secureJsonData" not in source
