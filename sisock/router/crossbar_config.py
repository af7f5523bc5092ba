"""``sisock crossbar-config``: the router's config.json, written from the environment.

Two transports on one realm:
- TLS websocket on ``CROSSBAR_TLS_PORT`` with WAMP-CRA: user ``WAMP_USER``
  gets role ``sisock`` (hub and data node servers), user ``sisock-http`` role
  ``consumer`` (read only: call ``consumer.*``, follow the hub's topics). The
  secret stays out of the file: crossbar reads ``${WAMP_SECRET}`` from its own
  environment (the unit shares ``/etc/sisock/sisock.env``).
- an anonymous websocket for OCS agents on ``CROSSBAR_OCS_PORT``, bound to
  ``CROSSBAR_OCS_INTERFACE`` (127.0.0.1 unless the site puts it on a private
  network; every interface only with ``CROSSBAR_OCS_WILDCARD=on``), whose role reaches
  ``observatory.*`` and nothing under ``org.simonsobservatory``; plus, only with ``CROSSBAR_OCS_CALL=on``, the HTTP
  ``/call`` bridge (crossbar answers it to any browser origin and cannot be
  told otherwise, so it stays off unless OCS clients need it).

No WebSocket accepts a browser page from elsewhere: the TLS port allows no
``Origin`` at all (components send none), the OCS port only
``CROSSBAR_OCS_ORIGINS``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List, Optional

from sisock.config import Config, ConfigError, is_wildcard
from sisock.wamp import BASE_URI, MAX_MESSAGE

SISOCK_ROLE = "sisock"
CONSUMER_ROLE = "consumer"
OCS_ROLE = "ocs"
#: The WAMP-CRA user of sisock-http (role ``consumer``); it shares ``WAMP_SECRET``.
CONSUMER_USER = "sisock-http"
OCS_PREFIX = "observatory."


def _permission(uri: str, match: str = "prefix", call=False, register=False, publish=False, subscribe=False,
                disclose_caller=False) -> Dict:
    return {
        "uri": uri,
        "match": match,
        "allow": {"call": call, "register": register, "publish": publish, "subscribe": subscribe},
        "disclose": {"caller": disclose_caller, "publisher": False},
        "cache": True,
    }


def roles() -> List[Dict]:
    """The three roles: sisock components, sisock-http, and anonymous OCS clients."""
    return [
        {
            "name": SISOCK_ROLE,
            "permissions": [
                # the hub and data node servers talk under the base URI
                _permission(f"{BASE_URI}.", call=True, register=True, publish=True, subscribe=True,
                            disclose_caller=True),
                # data-feed listens to OCS feeds
                _permission(OCS_PREFIX, subscribe=True),
                # the hub follows sessions to free the names of those that left
                _permission("wamp.session.on_leave", match="exact", subscribe=True),
                _permission("wamp.session.get", match="exact", call=True),
            ],
        },
        {
            "name": CONSUMER_ROLE,
            "permissions": [
                # data nodes' get_fields/get_data, the hub's list, the hub's added/subtracted topics
                _permission(f"{BASE_URI}.consumer.", call=True, subscribe=True),
            ],
        },
        {
            "name": OCS_ROLE,
            "permissions": [
                _permission(OCS_PREFIX, call=True, register=True, publish=True, subscribe=True),
            ],
        },
    ]


def _origins(allowed) -> Dict:
    """WebSocket options: browser pages of these origins only (``scheme://host:port``, ``*`` wildcards);
    clients that send no ``Origin`` (every non-browser one) are not affected."""
    return {"allowed_origins": list(allowed), "allow_null_origin": False}


def _tls_transport(config: Config) -> Dict:
    if not (config.crossbar_tls_cert and config.crossbar_tls_key):
        raise ConfigError("CROSSBAR_TLS_CERT and CROSSBAR_TLS_KEY must name the router's certificate and key")
    if config.wamp_user == CONSUMER_USER:
        raise ConfigError(f"WAMP_USER={config.wamp_user!r} is the name kept for sisock-http; choose another")
    tls = {"certificate": str(config.crossbar_tls_cert.resolve()), "key": str(config.crossbar_tls_key.resolve())}
    return {
        "type": "web",
        "endpoint": {"type": "tcp", "interface": config.tls_interface, "port": config.crossbar_tls_port, "tls": tls},
        "paths": {
            "ws": {
                "type": "websocket",
                "auth": {
                    "wampcra": {
                        "type": "static",
                        "users": {config.wamp_user: {"secret": "${WAMP_SECRET}", "role": SISOCK_ROLE},
                                  CONSUMER_USER: {"secret": "${WAMP_SECRET}", "role": CONSUMER_ROLE}},
                    }
                },
                "options": {"auto_ping_interval": 10000, "auto_ping_timeout": 20000,
                            "max_message_size": MAX_MESSAGE, **_origins(())},
            },
        },
    }


def ocs_warning(config: Config) -> Optional[str]:
    """The warning to log when the unauthenticated OCS port listens on every interface, or None."""
    if not is_wildcard(config.crossbar_ocs_interface):
        return None
    return (f"the OCS port {config.crossbar_ocs_port} has no authentication and listens on every interface "
            f"(CROSSBAR_OCS_INTERFACE={config.crossbar_ocs_interface}): anyone who reaches it can publish "
            "OCS feeds; keep it on a site-private network")


def _ocs_interface(config: Config) -> str:
    """CROSSBAR_OCS_INTERFACE, refused when it is a wildcard without CROSSBAR_OCS_WILDCARD=on."""
    interface = config.crossbar_ocs_interface
    if is_wildcard(interface) and not config.crossbar_ocs_wildcard:
        raise ConfigError(f"CROSSBAR_OCS_INTERFACE={interface!r} is every interface and the OCS port has no "
                          "authentication: name the router's address on the site-private network, or set "
                          "CROSSBAR_OCS_WILDCARD=on")
    return interface


def _ocs_transport(config: Config) -> Dict:
    paths: Dict[str, Dict] = {
        "ws": {"type": "websocket", "auth": {"anonymous": {"type": "static", "role": OCS_ROLE}},
               "options": {"max_message_size": MAX_MESSAGE, **_origins(config.crossbar_ocs_origins)}},
    }
    if config.crossbar_ocs_call:
        paths["call"] = {"type": "caller", "realm": config.crossbar_realm, "role": OCS_ROLE}
    return {
        "type": "web",
        "endpoint": {"type": "tcp", "interface": _ocs_interface(config), "port": config.crossbar_ocs_port},
        "paths": paths,
    }


def build(config: Config) -> Dict:
    """The whole router config as a dict (``version: 2``)."""
    return {
        "version": 2,
        "controller": {},
        "workers": [
            {
                "type": "router",
                "realms": [{"name": config.crossbar_realm, "roles": roles()}],
                "transports": [_tls_transport(config), _ocs_transport(config)],
            }
        ],
    }


def write(config: Config, directory: Path) -> Path:
    """Write ``directory/config.json`` (mode 0640: it names the user and the key)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    text = json.dumps(build(config), indent=2) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path
