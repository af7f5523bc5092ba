"""The log lines of sisock's own error paths come out whole (each in a fresh process: log.start
takes over the process's Twisted logging)."""
import subprocess
import sys
import textwrap


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, env={"JOURNAL_STREAM": "1"})  # no time prefix


def test_fatal_logs_why_and_sets_exit_code_1():
    result = run_python("""
        from sisock import log, wamp
        log.start("hub")
        wamp.fatal("another hub is already running on this realm")
        print(wamp._exit_code[0])
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    assert result.stderr == "hub critical: another hub is already running on this realm\n"


def test_cherrypy_warnings_become_our_log_lines():
    result = run_python("""
        from sisock import log
        from sisock.http.server import _forward_cherrypy_log
        log.start("http")
        _forward_cherrypy_log("Port 5000 not free on '127.0.0.1'", 30)
        _forward_cherrypy_log("an info line, left out", 20)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "http warn: cherrypy: Port 5000 not free on '127.0.0.1'\n"


def test_an_unexpected_error_in_a_request_is_a_500_and_a_traceback_line():
    result = run_python("""
        from types import SimpleNamespace
        from sisock import log
        from sisock.http.app import Datasource

        class Broken:
            def check(self, headers, response_headers):
                raise KeyError("a bug")

        log.start("http")
        datasource = Datasource.__new__(Datasource)
        datasource.auth = Broken()
        status, payload, note = datasource._run(None, SimpleNamespace(headers={}, path_info="/query"))
        print(status, payload["error"])
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("500 internal error: ")
    line, = result.stderr.splitlines()
    assert line.startswith("http error: /query: unexpected error Traceback")
    assert "KeyError: 'a bug'" in line
