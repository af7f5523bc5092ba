"""The Grafana datasource the play writes carries sisock-http's credentials and the site CA
in ``secureJsonData`` (rendered by Ansible itself from the role's template)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
ROLE = REPO / "deploy/ansible/roles/grafana_provisioning"
TEMPLATE = ROLE / "templates/datasource.yml.j2"
ANSIBLE = Path(sys.executable).parent / "ansible"


def render_template(tmp_path: Path, template: Path, variables: dict) -> dict:
    """``template`` rendered by Ansible itself with the role's defaults and ``variables``, as YAML."""
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    variables = {**{k: v for k, v in defaults.items() if "{{" not in str(v)},
                 "grafana_provisioning_user": "", "grafana_provisioning_password": "", "grafana_provisioning_token": "",
                 "grafana_provisioning_influxql_database": "ocs_feeds", "grafana_provisioning_prometheus_url": "",
                 "grafana_provisioning_ca_file": str(tmp_path / "ca.pem"), "ansible_python_interpreter": sys.executable,
                 **variables}
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(variables))
    dest = tmp_path / template.name.replace(".j2", "")
    result = subprocess.run([str(ANSIBLE), "localhost", "-c", "local", "-i", "localhost,",
                             "-m", "ansible.builtin.template", "-a", f"src={template} dest={dest}", "-e", f"@{extra}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return yaml.safe_load(dest.read_text())


def render(tmp_path: Path, **variables) -> dict:
    """The JSON datasource the template writes."""
    return render_template(tmp_path, TEMPLATE, variables)["datasources"][0]


def influxql(tmp_path: Path, **variables) -> dict:
    """The InfluxQL datasource the template writes."""
    return render_template(tmp_path, TEMPLATE, variables)["datasources"][1]


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


def test_the_influxql_datasource_shares_the_credentials_and_ca(tmp_path):
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    source = influxql(tmp_path, grafana_provisioning_url="https://hk-router.site:5000/",
                      grafana_provisioning_user="grafana", grafana_provisioning_password="pw")
    assert (source["type"], source["uid"], source["url"]) == ("influxdb", "sisock-influxql",
                                                              "https://hk-router.site:5000/influxdb")
    assert source["jsonData"] == {"version": "InfluxQL", "dbName": "ocs_feeds", "httpMode": "POST",
                                  "tlsAuthWithCACert": True}
    assert (source["basicAuth"], source["basicAuthUser"]) == (True, "grafana")
    assert source["secureJsonData"]["basicAuthPassword"] == "pw" and "BEGIN" in source["secureJsonData"]["tlsCACert"]
    token = influxql(tmp_path, grafana_provisioning_url="http://127.0.0.1:5000", grafana_provisioning_token="t0k")
    assert token["jsonData"]["httpHeaderName1"] == "Authorization"
    assert token["secureJsonData"] == {"httpHeaderValue1": "Bearer t0k"}


def test_the_example_alert_rule_is_grafanas_provisioning_format(tmp_path):
    rules = render_template(tmp_path, ROLE / "templates/alerting.yml.j2", {})
    [group] = rules["groups"]
    [rule] = group["rules"]
    assert rules["apiVersion"] == 1 and rule["condition"] == "C" and rule["for"] == "5m"
    query, reduce, threshold = rule["data"]
    assert query["datasourceUid"] == "sisock-influxql" and "$timeFilter" in query["model"]["query"]
    assert query["model"]["query"].startswith('SELECT mean("Channel_01_T") FROM "observatory.LSA22YE" WHERE '
                                              '("feed"::tag = \'temperatures\')')
    assert reduce["model"]["type"] == "reduce" and threshold["model"]["conditions"][0]["evaluator"] == \
        {"type": "gt", "params": [4.5]}


def test_the_datasources_have_the_uids_the_dashboard_and_alert_rules_name_and_prometheus_only_when_asked(tmp_path):
    """deploy/grafana/ names datasource uids "sisock", "sisock-influxql" and "sisock-prometheus": the role must
    provision them; the health alert rules go through InfluxQL (the JSON datasource plugin cannot alert)."""
    assert render(tmp_path, grafana_provisioning_url="http://127.0.0.1:5000")["uid"] == "sisock"
    dashboard = json.loads((REPO / "deploy/grafana/sisock-dashboard.json").read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    assert uids <= {"sisock", "sisock-influxql", "sisock-prometheus"}
    rules = yaml.safe_load((REPO / "deploy/grafana/alert-rules.yaml").read_text())["groups"][0]["rules"]
    assert {d["datasourceUid"] for r in rules for d in r["data"]} == {"sisock-influxql", "__expr__"}
    assert all('FROM "sisock_health" WHERE $timeFilter' in r["data"][0]["model"]["query"] for r in rules)
    datasources = render_template(tmp_path, TEMPLATE, {"grafana_provisioning_url": "http://127.0.0.1:5000",
                                                       "grafana_provisioning_prometheus_url":
                                                       "http://prometheus.site:9090"})["datasources"]
    assert [d["uid"] for d in datasources] == ["sisock", "sisock-influxql", "sisock-prometheus"]
    assert (datasources[2]["type"], datasources[2]["url"]) == ("prometheus", "http://prometheus.site:9090")
