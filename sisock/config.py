"""Every setting of sisock, read once from the environment and validated.

The real environment wins; otherwise the file named by ``SISOCK_ENV_FILE`` is
read with python-dotenv. A bad value stops the program at start with one line
that names the variable (:class:`ConfigError`).
"""
from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from dotenv import dotenv_values

#: The development secret; refused whenever the router is not on loopback.
INSECURE_DEFAULT_SECRET = "sisock-insecure-development-secret"

LOG_LEVELS = ("none", "critical", "error", "warn", "info", "debug", "trace")

#: Variables whose values are secrets: a file that sets one must not be
#: readable by everyone.
SECRET_VARIABLES = ("WAMP_SECRET", "SQL_PASSWD", "HTTP_PASSWORD", "HTTP_TOKEN", "METRICS_PASSWORD")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message is one line naming it."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """True for the addresses that mean every interface (0.0.0.0, ::)."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _text(name: str, raw: str) -> str:
    return raw


def _optional_text(name: str, raw: str) -> Optional[str]:
    return raw or None


def _port(name: str, raw: str) -> int:
    value = _integer(name, raw)
    if not 1 <= value <= 65535:
        raise ConfigError(f"{name}={raw!r}: a port must be between 1 and 65535")
    return value


def _optional_port(name: str, raw: str) -> Optional[int]:
    """A port, 0 (off), or empty (unset: the default)."""
    if not raw:
        return None
    value = _integer(name, raw)
    if not 0 <= value <= 65535:
        raise ConfigError(f"{name}={raw!r}: a port must be between 1 and 65535 (0: off)")
    return value


def _integer(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: not a whole number") from None


def _non_negative_integer(name: str, raw: str) -> int:
    value = _integer(name, raw)
    if value < 0:
        raise ConfigError(f"{name}={raw!r}: must be 0 or more")
    return value


def _positive_integer(name: str, raw: str) -> int:
    value = _integer(name, raw)
    if value < 1:
        raise ConfigError(f"{name}={raw!r}: must be 1 or more")
    return value


def _number(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: not a number") from None


def _positive_number(name: str, raw: str) -> float:
    value = _number(name, raw)
    if not value > 0:
        raise ConfigError(f"{name}={raw!r}: must be more than 0")
    return value


def _non_negative_number(name: str, raw: str) -> float:
    value = _number(name, raw)
    if not value >= 0:
        raise ConfigError(f"{name}={raw!r}: must be 0 or more")
    return value


def _optional_path(name: str, raw: str) -> Optional[Path]:
    return Path(raw) if raw else None


def _path(name: str, raw: str) -> Path:
    if not raw:
        raise ConfigError(f"{name} is empty: a path is needed")
    return Path(raw)


def _log_level(name: str, raw: str) -> str:
    level = raw.lower()
    if level == "warning":
        level = "warn"
    if level not in LOG_LEVELS:
        raise ConfigError(f"{name}={raw!r}: not one of {', '.join(LOG_LEVELS)}")
    return level


def _one_of(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        if raw not in choices:
            raise ConfigError(f"{name}={raw!r}: not one of {', '.join(choices)}")
        return raw

    return parse


def _names(name: str, raw: str) -> Tuple[str, ...]:
    """A comma-separated list of host names or origins (empty: none)."""
    values = tuple(part.strip() for part in raw.split(",") if part.strip())
    if any(any(c.isspace() for c in value) for value in values):
        raise ConfigError(f"{name}={raw!r}: a comma-separated list without spaces inside a name")
    return values


def _switch(name: str, raw: str) -> bool:
    """``on``/``off`` (also true/false, yes/no, 1/0, as YAML and Ansible may write them)."""
    value = raw.lower()
    if value not in ("on", "true", "yes", "1", "off", "false", "no", "0"):
        raise ConfigError(f"{name}={raw!r}: not on or off")
    return value in ("on", "true", "yes", "1")


def _host(name: str, raw: str) -> str:
    if not raw or any(c.isspace() for c in raw) or "/" in raw:
        raise ConfigError(f"{name}={raw!r}: not a host name or address")
    return raw


def _setting(default, meaning: str):
    """A field of :class:`Config`: its default, and what it means (``sisock COMMAND --help``)."""
    return field(default=default, metadata={"meaning": meaning})


@dataclass(frozen=True)
class Config:
    """Validated settings. Field ``foo_bar`` comes from variable ``FOO_BAR``.

    The one definition of every setting: its default and meaning here, its
    validation in ``_PARSERS``, and which commands read it in ``READS``.
    """

    # WAMP router and credentials
    wamp_user: str = _setting("server", "WAMP-CRA user")
    wamp_secret: str = _setting(INSECURE_DEFAULT_SECRET, "WAMP-CRA secret (the development one is refused "
                                "unless the router is on loopback)")
    crossbar_host: str = _setting("127.0.0.1", "the router's host, a name or address in its certificate")
    crossbar_tls_port: int = _setting(8080, "the router's TLS websocket port (WAMP-CRA)")
    crossbar_ocs_port: int = _setting(8001, "the router's open port for OCS agents (no authentication)")
    crossbar_realm: str = _setting("test_realm", "WAMP realm")
    crossbar_ca_cert: Optional[Path] = _setting(None, "PEM file of the CA that signed the router's certificate "
                                                "(unset: the system's trust store)")
    crossbar_tls_cert: Optional[Path] = _setting(None, "the router's certificate (PEM)")
    crossbar_tls_key: Optional[Path] = _setting(None, "the router's private key (PEM)")
    #: Interface the router's TLS port binds; empty = loopback when
    #: CROSSBAR_HOST is loopback, every interface otherwise.
    crossbar_tls_interface: Optional[str] = _setting(None, "address the router's TLS port binds (unset: loopback "
                                                     "when CROSSBAR_HOST is, else every interface)")
    crossbar_ocs_origins: Tuple[str, ...] = _setting((), "browser origins allowed to open a WebSocket on the OCS "
                                                     "port, comma-separated (e.g. ocs-web's; none by default)")
    crossbar_ocs_interface: str = _setting("127.0.0.1", "address the OCS port binds: loopback, or the router's "
                                           "address on a site-private network (it has no authentication)")
    crossbar_ocs_wildcard: bool = _setting(False, "on: let CROSSBAR_OCS_INTERFACE be every interface (0.0.0.0 "
                                           "or ::); off by default")
    crossbar_ocs_call: bool = _setting(False, "on: the OCS port's HTTP /call bridge (OCSClient, ocs-client-cli); "
                                       "off by default")
    # sisock-http
    http_host: str = _setting("127.0.0.1", "address sisock-http listens on")
    port: int = _setting(5000, "sisock-http's port")
    http_timeout: float = _setting(30.0, "seconds a data node's answer is waited for")
    #: sisock-http lists the fields each data node has had in this many recent seconds (0 = ever).
    http_fields_window: float = _setting(0.0, "the metric list shows fields with data in this many recent "
                                         "seconds (0: ever)")
    http_header_timeout: float = _setting(10.0, "seconds a client has to send a request's line and headers")
    http_body_timeout: float = _setting(30.0, "seconds a client then has to send the request's body")
    http_max_targets: int = _setting(200, "most targets one /query may name (repeats included; identical ones "
                                     "are fetched once)")
    http_max_points: int = _setting(2_000_000, "most points one /query answer may hold, all targets together")
    http_cache_mb: int = _setting(64, "megabytes of finalized panel slots kept, so a repeated panel asks data nodes "
                                      "only for its edges (0: none)")
    http_public_names: Tuple[str, ...] = _setting((), "host names sisock-http answers to besides loopback ones, "
                                                  "comma-separated (empty: any Host)")
    http_user: Optional[str] = _setting(None, "HTTP basic auth user Grafana sends (with HTTP_PASSWORD)")
    http_password: Optional[str] = _setting(None, "HTTP basic auth password (a secret)")
    http_token: Optional[str] = _setting(None, "bearer token accepted besides basic auth (a secret)")
    http_tls_cert: Optional[Path] = _setting(None, "sisock-http's certificate (PEM): https instead of http")
    http_tls_key: Optional[Path] = _setting(None, "sisock-http's private key (PEM)")
    influxdb_database: str = _setting("ocs_feeds", "the database name sisock-http's InfluxDB API (/influxdb) "
                                      "answers to")
    influxdb_max_select_point: int = _setting(1_000_000, "most samples one InfluxQL statement may read (raw "
                                              "SELECT, median, percentile, ...; InfluxDB's max-select-point)")
    influxdb_max_select_buckets: int = _setting(100_000, "most GROUP BY time buckets one InfluxQL statement may "
                                                "make (InfluxDB's max-select-buckets)")
    loglevel: str = _setting("info", f"log level: {', '.join(LOG_LEVELS)}")
    # g3 index
    sql_host: Optional[str] = _setting(None, "MySQL/MariaDB host of the g3 index (unset: the SQLite file)")
    sql_port: int = _setting(3306, "MySQL/MariaDB port")
    sql_user: str = _setting("sisock", "MySQL/MariaDB user")
    sql_passwd: str = _setting("", "MySQL/MariaDB password")
    sql_db: str = _setting("sisock", "MySQL/MariaDB database")
    sqlite_path: Path = _setting(Path("/var/lib/sisock/g3-index.sqlite"), "the SQLite g3 index file")
    data_directory: Optional[Path] = _setting(None, "top of the archive this server reads")
    scan_interval: float = _setting(3600.0, "seconds between two scans")
    g3_cache_mb: int = _setting(256, "megabytes of decoded frames kept in memory (shared out among the workers)")
    g3_reader_processes: int = _setting(0, "worker processes answering get_data (0: one per core, at most 4; "
                                           "1: none, the reader itself)")
    # every data node server
    max_points: int = _setting(0, "cap on the points returned per field and call (0: none)")
    # data-feed instance
    target: Optional[str] = _setting(None, "the OCS agent's instance-id (required)")
    feed: Optional[str] = _setting(None, "the agent's feed (required)")
    name: Optional[str] = _setting(None, "the data node name Grafana shows (required)")
    description: Optional[str] = _setting(None, "the data node's description")
    buffer_time: float = _setting(3600.0, "seconds of the feed kept in memory (sisock-http: the longest any "
                                          "data-feed keeps, how far back it joins live samples)")
    data_feed_transport: str = _setting("tls", "tls (WAMP-CRA, any host) or ocs (the open port, router host only)")
    # metrics for Prometheus (sisock/metrics/, docs/monitoring.md)
    metrics_host: str = _setting("127.0.0.1", "address this component's metrics endpoint listens on (loopback; "
                                 "off-host only on a site-private address or with METRICS_PASSWORD)")
    metrics_port: Optional[int] = _setting(None, "this component's metrics port (unset: its port in the default "
                                           "layout, none for data-feed; 0: no metrics endpoint)")
    metrics_user: Optional[str] = _setting(None, "HTTP basic auth user Prometheus sends (with METRICS_PASSWORD)")
    metrics_password: Optional[str] = _setting(None, "HTTP basic auth password of the metrics endpoint (a secret)")
    # sensors
    sensors_interval: float = _setting(1.0, "seconds between two readings")
    sensors_keep: float = _setting(3600.0, "seconds of readings kept")

    @property
    def sql_enabled(self) -> bool:
        """True when the g3 index lives in MySQL/MariaDB rather than SQLite."""
        return self.sql_host is not None

    @property
    def tls_interface(self) -> str:
        """The address the router's TLS port listens on."""
        if self.crossbar_tls_interface:
            return self.crossbar_tls_interface
        return "127.0.0.1" if is_loopback(self.crossbar_host) else "0.0.0.0"

    @property
    def ocs_client_host(self) -> str:
        """Where a client on the router host reaches the OCS port (loopback when it binds a wildcard)."""
        if is_wildcard(self.crossbar_ocs_interface):
            return "::1" if ":" in self.crossbar_ocs_interface else "127.0.0.1"
        return self.crossbar_ocs_interface

    def with_values(self, **changes) -> "Config":
        """A copy with some fields changed (tests and the demo use it)."""
        return replace(self, **changes)


_PARSERS: Mapping[str, Callable[[str, str], object]] = {
    "wamp_user": _text,
    "wamp_secret": _text,
    "crossbar_host": _host,
    "crossbar_tls_port": _port,
    "crossbar_ocs_port": _port,
    "crossbar_realm": _text,
    "crossbar_ca_cert": _optional_path,
    "crossbar_tls_cert": _optional_path,
    "crossbar_tls_key": _optional_path,
    "crossbar_tls_interface": _optional_text,
    "crossbar_ocs_origins": _names,
    "crossbar_ocs_interface": _host,
    "crossbar_ocs_wildcard": _switch,
    "crossbar_ocs_call": _switch,
    "http_host": _host,
    "port": _port,
    "http_timeout": _positive_number,
    "http_fields_window": _non_negative_number,
    "http_header_timeout": _positive_number,
    "http_body_timeout": _positive_number,
    "http_max_targets": _positive_integer,
    "http_max_points": _positive_integer,
    "http_cache_mb": _non_negative_integer,
    "http_public_names": _names,
    "http_user": _optional_text,
    "http_password": _optional_text,
    "http_token": _optional_text,
    "http_tls_cert": _optional_path,
    "http_tls_key": _optional_path,
    "influxdb_database": _text,
    "influxdb_max_select_point": _positive_integer,
    "influxdb_max_select_buckets": _positive_integer,
    "loglevel": _log_level,
    "sql_host": _optional_text,
    "sql_port": _port,
    "sql_user": _text,
    "sql_passwd": _text,
    "sql_db": _text,
    "sqlite_path": _path,
    "data_directory": _optional_path,
    "scan_interval": _positive_number,
    "g3_cache_mb": _non_negative_integer,
    "g3_reader_processes": _non_negative_integer,
    "max_points": _non_negative_integer,
    "target": _optional_text,
    "feed": _optional_text,
    "name": _optional_text,
    "description": _optional_text,
    "buffer_time": _positive_number,
    "data_feed_transport": _one_of("tls", "ocs"),
    "metrics_host": _host,
    "metrics_port": _optional_port,
    "metrics_user": _optional_text,
    "metrics_password": _optional_text,
    "sensors_interval": _positive_number,
    "sensors_keep": _positive_number,
}

#: Every variable sisock reads, in the order of :class:`Config`.
VARIABLES = tuple(f.name.upper() for f in fields(Config))

# What each command reads (its ``--help`` lists these, with defaults and meanings).
_LOG = ("LOGLEVEL",)
_WAMP = ("WAMP_USER", "WAMP_SECRET", "CROSSBAR_HOST", "CROSSBAR_TLS_PORT", "CROSSBAR_REALM", "CROSSBAR_CA_CERT",
         "CROSSBAR_TLS_INTERFACE") + _LOG
_METRICS = ("METRICS_HOST", "METRICS_PORT", "METRICS_USER", "METRICS_PASSWORD")
_NODE = _WAMP + _METRICS + ("MAX_POINTS", "HTTP_TIMEOUT")
_INDEX = ("SQL_HOST", "SQL_PORT", "SQL_USER", "SQL_PASSWD", "SQL_DB", "SQLITE_PATH")
_HTTP = ("HTTP_HOST", "PORT", "HTTP_TIMEOUT", "HTTP_FIELDS_WINDOW", "HTTP_HEADER_TIMEOUT", "HTTP_BODY_TIMEOUT",
         "HTTP_MAX_TARGETS", "HTTP_MAX_POINTS", "HTTP_CACHE_MB", "HTTP_PUBLIC_NAMES", "HTTP_USER", "HTTP_PASSWORD",
         "HTTP_TOKEN", "HTTP_TLS_CERT", "HTTP_TLS_KEY", "BUFFER_TIME", "INFLUXDB_DATABASE",
         "INFLUXDB_MAX_SELECT_POINT", "INFLUXDB_MAX_SELECT_BUCKETS")
_ROUTER = ("WAMP_USER", "WAMP_SECRET", "CROSSBAR_HOST", "CROSSBAR_TLS_PORT", "CROSSBAR_OCS_PORT", "CROSSBAR_REALM",
           "CROSSBAR_TLS_CERT", "CROSSBAR_TLS_KEY", "CROSSBAR_TLS_INTERFACE", "CROSSBAR_OCS_INTERFACE",
           "CROSSBAR_OCS_WILDCARD", "CROSSBAR_OCS_ORIGINS", "CROSSBAR_OCS_CALL")

#: command -> the variables it reads.
READS: Dict[str, Tuple[str, ...]] = {
    "hub": _WAMP + _METRICS,
    "http": _WAMP + _HTTP + _METRICS,
    "g3-file-scanner": ("DATA_DIRECTORY", "SCAN_INTERVAL") + _INDEX + _LOG + _METRICS,
    "g3-reader": _NODE + _INDEX + ("G3_CACHE_MB", "G3_READER_PROCESSES"),
    "data-feed": _NODE + ("TARGET", "FEED", "NAME", "DESCRIPTION", "BUFFER_TIME", "DATA_FEED_TRANSPORT",
                          "CROSSBAR_OCS_PORT", "CROSSBAR_OCS_INTERFACE"),
    "weather": _NODE + ("DATA_DIRECTORY",),
    "sensors": _NODE + ("SENSORS_INTERVAL", "SENSORS_KEEP"),
    "apex-weather": _NODE + ("DATA_DIRECTORY",),
    "radiometer": _NODE + ("DATA_DIRECTORY",),
    "status": _WAMP,
    "certs": (),
    "crossbar-config": _ROUTER,
    # the demo reads these itself and hands the whole environment to every component
    "demo": _ROUTER + ("CROSSBAR_CA_CERT", "HTTP_HOST", "PORT", "SQLITE_PATH"),
}


def _shown_default(f) -> str:
    value = f.default if f.default is not MISSING else None
    if value is None or value == "" or value == ():
        return "(unset)"
    if isinstance(value, bool):
        return "on" if value else "off"
    if f.name == "wamp_secret":
        return "(the development secret)"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def describe(command: str) -> str:
    """The settings ``command`` reads, one per line with its default and meaning (for ``--help``)."""
    names = list(dict.fromkeys(READS.get(command, ())))
    if not names:
        return "settings: none from the environment."
    by_variable = {f.name.upper(): f for f in fields(Config)}
    rows: List[Tuple[str, str]] = [(f"{n}={_shown_default(by_variable[n])}", by_variable[n].metadata["meaning"])
                                   for n in names]
    width = max(len(left) for left, _ in rows)
    lines = ["settings read (the environment wins over the file named by SISOCK_ENV_FILE;",
             "every variable is explained in etc/sisock.env.example), with their defaults:"]
    lines += [f"  {left.ljust(width)}  {meaning}" for left, meaning in rows]
    return "\n".join(lines)


def _read_env_file(path: Path) -> dict:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"SISOCK_ENV_FILE={str(path)!r}: cannot read it ({exc.strerror})") from None
    values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    if mode & (stat.S_IROTH | stat.S_IWOTH) and any(values.get(k) for k in SECRET_VARIABLES):
        raise ConfigError(
            f"SISOCK_ENV_FILE={str(path)!r}: holds a secret but is readable by others "
            f"(mode {stat.S_IMODE(mode):04o}); chmod 0640 or tighter"
        )
    return values


def load(environ: Optional[Mapping[str, str]] = None) -> Config:
    """Read and validate the settings; raise :class:`ConfigError` on the first bad one."""
    environ = dict(os.environ if environ is None else environ)
    source: dict = {}
    env_file = environ.get("SISOCK_ENV_FILE")
    if env_file:
        source.update(_read_env_file(Path(env_file)))
    source.update(environ)

    values: Dict[str, Any] = {}
    for setting in fields(Config):
        variable = setting.name.upper()
        if variable in source:
            values[setting.name] = _PARSERS[setting.name](variable, source[variable].strip())
    config = Config(**values)
    check_secret(config)
    return config


def check_secret(config: Config) -> None:
    """Refuse the development secret anywhere but on loopback."""
    if not config.wamp_secret:
        raise ConfigError("WAMP_SECRET is empty: set a secret")
    if config.wamp_secret != INSECURE_DEFAULT_SECRET:
        return
    if not is_loopback(config.crossbar_host):
        raise ConfigError(
            f"WAMP_SECRET is the insecure default but CROSSBAR_HOST={config.crossbar_host!r} "
            "is not loopback; set a secret of your own"
        )
    if not is_loopback(config.tls_interface):
        raise ConfigError(
            f"WAMP_SECRET is the insecure default but the router would listen on "
            f"{config.tls_interface!r} (CROSSBAR_TLS_INTERFACE); set a secret of your own"
        )
