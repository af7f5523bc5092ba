"""``sisock hub``: the registry of live data node servers.

Compatible with the original hub (docs/design.md, "WAMP contract"), with two
improvements: a name held by a session that has left is free at once (the hub
asks the router whether the holder still lives), and the hub announces itself
on every (re)join so that data node servers add themselves again: a restarted
hub, or a hub that rejoins after a router restart, knows every live server
within seconds.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.interfaces import ISession
from autobahn.wamp.types import CallDetails, RegisterOptions
from twisted.internet import defer

from sisock import collector, log, notify, wamp
from sisock.config import Config
from sisock.health import HealthServer
from sisock.metrics import hub as hub_metrics


class Hub:
    """The hub's state and its WAMP procedures."""

    def __init__(self) -> None:
        self.session: Optional[ISession] = None
        #: name -> {"name", "description", "session_id"}
        self.nodes: Dict[str, dict] = {}
        self.log = log.logger()

    def _status(self) -> None:
        """Tell systemd how many data nodes the hub knows."""
        names = sorted(self.nodes)
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        notify.status(f"hub: {len(names)} data nodes{': ' + shown if names else ''}")

    def public(self) -> List[dict]:
        """What consumers see of each node."""
        return [{"name": n["name"], "description": n["description"]} for n in self.nodes.values()]

    @defer.inlineCallbacks
    def _alive(self, session_id: int):
        assert self.session is not None  # called at once by add(), a procedure of the joined session
        try:
            yield self.session.call("wamp.session.get", session_id)
        except ApplicationError as exc:
            if exc.error == "wamp.error.no_such_session":
                return False
            raise
        return True

    @defer.inlineCallbacks
    def add(self, name: str, description: str, session_id: Optional[int] = None,
            details: Optional[CallDetails] = None):
        """Hold ``name`` for the calling session and announce it (``data_node_added``, also when its
        holder adds it again: consumers then read its fields anew); false if another live
        session holds it."""
        caller = details.caller if details is not None and details.caller else session_id
        if not isinstance(name, str) or not name or "::" in name:
            raise ApplicationError(f"{wamp.BASE_URI}.error.bad_request", f"bad data node name {name!r}")
        held = self.nodes.get(name)
        if held is not None and held["session_id"] != caller:
            if (yield self._alive(held["session_id"])):
                self.log.warn("refused data node {name}: held by live session {sid}", name=name,
                              sid=held["session_id"])
                hub_metrics.EVENTS.labels("refused").inc()
                return False
            self._drop(name, f"its session {held['session_id']} has left")
        if held is None or held["session_id"] != caller or held["description"] != description:
            self.nodes[name] = {"name": name, "description": str(description), "session_id": caller}
            self.log.info("added data node {name} (session {sid})", name=name, sid=caller)
            hub_metrics.EVENTS.labels("added").inc()
            self._status()
        # announced again when its holder adds it again: its fields changed (a feed's first samples)
        if self.session is not None:  # None if the hub left while _alive() waited
            self.session.publish(wamp.TOPIC_ADDED, {"name": name, "description": str(description)})
        return True

    def subtract(self, name: str, session_id: Optional[int] = None, details: Optional[CallDetails] = None) -> bool:
        """Release ``name`` if the calling session holds it."""
        caller = details.caller if details is not None and details.caller else session_id
        held = self.nodes.get(name)
        if held is None or held["session_id"] != caller:
            return False
        self._drop(name, "subtracted by its server")
        return True

    def get_data_node(self) -> List[dict]:
        """Every live data node: ``[{"name", "description"}, ...]``."""
        return self.public()

    def on_session_leave(self, session_id: int, *_details) -> None:
        """Drop every node of a session that has left the router."""
        for name in [n for n, held in self.nodes.items() if held["session_id"] == session_id]:
            self._drop(name, f"its session {session_id} left")

    def _drop(self, name: str, why: str) -> None:
        node = self.nodes.pop(name)
        hub_metrics.EVENTS.labels("subtracted").inc()
        self.log.info("subtracted data node {name}: {why}", name=name, why=why)
        self._status()
        if self.session is not None and self.session.is_attached():
            self.session.publish(wamp.TOPIC_SUBTRACTED, {"name": name, "description": node["description"]})

    @defer.inlineCallbacks
    def join(self, session, details):
        """Register the procedures, forget stale state, and ask servers to add themselves."""
        self.session = session
        self.nodes.clear()
        with_caller = RegisterOptions(details_arg="details")
        try:
            yield session.register(self.add, wamp.HUB_ADD, with_caller)
        except ApplicationError as exc:
            if exc.error == "wamp.error.procedure_already_exists":
                wamp.fatal("another hub is already running on this realm")
                return
            raise
        yield session.register(self.subtract, wamp.HUB_SUBTRACT, with_caller)
        yield session.register(self.get_data_node, wamp.HUB_LIST)
        yield session.subscribe(self.on_session_leave, "wamp.session.on_leave")
        yield session.publish(wamp.TOPIC_HUB_STARTED, {"session_id": details.session})
        self.log.info("hub ready on realm {realm}", realm=details.realm)
        collector.freeze_start_up()
        notify.ready(f"hub: joined realm {details.realm}; waiting for data nodes")

    def leave(self, session, details):
        self.session = None


def main(args, config: Config) -> int:
    """Run the hub, and beside it the health data node (sisock/health.py), until SIGTERM."""
    hub = Hub()
    hub_metrics.watch(lambda: hub.nodes)
    component = wamp.make_component(config)
    component.on("join", hub.join)
    component.on("leave", hub.leave)
    health, hooks = HealthServer(config, lambda: sorted(hub.nodes)).prepare()
    return wamp.run("hub", config, [component, *health], on_shutdown=hooks)
