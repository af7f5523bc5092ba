"""The hub, the DataNodeServer base and the WAMP plumbing, with a real router."""
from __future__ import annotations



from sisock import health, wamp
from tests.support import attempt, wait_until


def node_names(client):
    """The data nodes the hub lists, but its own health node (sisock/health.py, in the hub's process)."""
    return sorted(n["name"] for n in client.call(wamp.HUB_LIST) if n["name"] != health.NAME)


def test_add_subtract_list_and_topics(procs, client):
    procs.start("hub").wait_for("hub ready")
    events = []
    client.subscribe(wamp.TOPIC_ADDED, lambda info: info["name"] != health.NAME and events.append(("added", info)))
    client.subscribe(wamp.TOPIC_SUBTRACTED, lambda info: events.append(("subtracted", info)))

    own_id = client.session._session_id
    assert client.call(wamp.HUB_ADD, "probe", "a test node", own_id) is True
    assert {"name": "probe", "description": "a test node"} in client.call(wamp.HUB_LIST)
    assert client.call(wamp.HUB_SUBTRACT, "probe", own_id) is True
    assert "probe" not in node_names(client)
    wait_until(lambda: len(events) >= 2, 10, "both hub topics")
    assert events[:2] == [("added", {"name": "probe", "description": "a test node"}),
                          ("subtracted", {"name": "probe", "description": "a test node"})]


def test_taken_name_is_denied(procs, client):
    procs.start("hub").wait_for("hub ready")
    first = procs.start("weather")
    first.wait_for("added data node apex_archive")
    # the hub itself refuses the name to anybody else while the holder lives
    assert client.call(wamp.HUB_ADD, "apex_archive", "impostor", client.session._session_id) is False
    second = procs.start("weather")
    assert second.proc.wait(30) == 1
    assert "apex_archive" in second.output and "another live server" in second.output
    assert first.alive()
    assert node_names(client) == ["apex_archive"]


def test_killed_server_is_dropped_and_its_name_is_free(procs, client):
    procs.start("hub").wait_for("hub ready")
    first = procs.start("weather")
    first.wait_for("added data node apex_archive")
    first.kill()
    wait_until(lambda: "apex_archive" not in node_names(client), 15, "the hub to drop the killed server")
    procs.start("weather").wait_for("added data node apex_archive", timeout=15)
    assert node_names(client) == ["apex_archive"]


def test_clean_shutdown_subtracts(procs, client):
    procs.start("hub").wait_for("hub ready")
    subtracted = []
    client.subscribe(wamp.TOPIC_SUBTRACTED, subtracted.append)
    server = procs.start("weather")
    server.wait_for("added data node apex_archive")
    assert server.stop() == 0
    wait_until(lambda: subtracted, 10, "a data_node_subtracted event")
    assert subtracted[0]["name"] == "apex_archive"
    assert "stopped" in server.output


def test_hub_restart_readds_servers(procs, client):
    hub = procs.start("hub")
    hub.wait_for("hub ready")
    procs.start("weather").wait_for("added data node apex_archive")
    hub.stop()
    procs.start("hub").wait_for("hub ready")
    wait_until(lambda: node_names(client) == ["apex_archive"], 10, "the restarted hub to know the server")


def test_server_started_before_hub_is_added(procs, client):
    server = procs.start("weather")
    server.wait_for("hub not there yet")
    procs.start("hub").wait_for("hub ready")
    wait_until(lambda: node_names(client) == ["apex_archive"], 10, "the late hub to know the server")


def test_router_restart_everyone_reconnects(own_router, own_procs, own_client):
    hub = own_procs.start("hub")
    hub.wait_for("hub ready")
    server = own_procs.start("weather")
    server.wait_for("added data node apex_archive")
    own_router.restart()
    wait_until(lambda: own_client.connected, 30, "the test client to rejoin")
    wait_until(lambda: attempt(lambda: node_names(own_client)) == ["apex_archive"], 30, "hub and server to rejoin")
    assert hub.alive() and server.alive()
    assert own_client.call(wamp.get_fields_uri("apex_archive"), 1762387200, 1763596800)[0]



def test_a_second_hub_exits_with_a_clear_line(procs):
    procs.start("hub").wait_for("hub ready")
    second = procs.start("hub")
    assert second.proc.wait(30) == 1
    assert "another hub is already running" in second.output


def _loud(process):
    """The lines an operator must look at: warn and above."""
    return [line for line in process.lines if any(f" {level}:" in line for level in ("warn", "error", "critical"))]


def test_a_normal_start_and_an_orderly_stop_log_no_warning(procs):
    """Connecting is not worth a warning, and neither is a hub that stopped before a data node."""
    hub = procs.start("hub")
    hub.wait_for("hub ready")
    server = procs.start("weather")
    server.wait_for("added data node apex_archive")
    assert hub.stop() == 0  # the whole host stops: the hub may well go first
    assert server.stop() == 0
    assert _loud(hub) == [] and _loud(server) == [], hub.output + "\n" + server.output
    assert any(line.endswith("info: stopped") for line in server.lines)
