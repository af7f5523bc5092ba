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
    variables = {"grafana_provisioning_datasource_name": "sisock", "grafana_provisioning_datasource_uid": "sisock",
                 "grafana_provisioning_prometheus_url": "",
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


def test_the_datasource_has_the_uid_the_dashboard_and_alert_rules_name_and_prometheus_only_when_asked(tmp_path):
    """deploy/grafana/ names datasource uids "sisock" and "sisock-prometheus": the role must provision them."""
    assert render(tmp_path, grafana_provisioning_url="http://127.0.0.1:5000")["uid"] == "sisock"
    dashboard = json.loads((REPO / "deploy/grafana/sisock-dashboard.json").read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    assert uids == {"sisock", "sisock-prometheus"}
    rules = yaml.safe_load((REPO / "deploy/grafana/alert-rules.yaml").read_text())["groups"][0]["rules"]
    assert {d["datasourceUid"] for r in rules for d in r["data"]} == {"sisock", "__expr__"}
    assert all(r["data"][0]["model"]["target"].startswith("sisock_health::") for r in rules)
    variables = json.dumps({"grafana_provisioning_datasource_name": "sisock", "grafana_provisioning_datasource_uid":
                            "sisock", "grafana_provisioning_plugin": "simpod-json-datasource",
                            "grafana_provisioning_user": "", "grafana_provisioning_password": "",
                            "grafana_provisioning_token": "", "grafana_provisioning_ca_file": str(tmp_path / "ca.pem"),
                            "grafana_provisioning_prometheus_url": "http://prometheus.site:9090",
                            "grafana_provisioning_url": "http://127.0.0.1:5000",
                            "ansible_python_interpreter": sys.executable})
    (tmp_path / "vars.json").write_text(variables)
    dest = tmp_path / "both.yml"
    result = subprocess.run([str(ANSIBLE), "localhost", "-c", "local", "-i", "localhost,", "-m",
                             "ansible.builtin.template", "-a", f"src={TEMPLATE} dest={dest}", "-e",
                             f"@{tmp_path / 'vars.json'}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    prometheus = yaml.safe_load(dest.read_text())["datasources"][1]
    assert (prometheus["uid"], prometheus["type"], prometheus["url"]) == (
        "sisock-prometheus", "prometheus", "http://prometheus.site:9090")
