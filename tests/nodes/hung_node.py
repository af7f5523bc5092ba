"""A component for the watchdog test: runs like every sisock component (sisock.wamp.run feeds
systemd's watchdog), says READY, then blocks its reactor for an hour the first time it runs
(``HUNG_NODE_MARK`` does not exist yet), and keeps running healthily after a restart."""
import os
import sys
import time
from pathlib import Path

from twisted.internet import reactor

from sisock import notify, wamp
from sisock.config import load


def main() -> int:
    mark = Path(os.environ["HUNG_NODE_MARK"])
    first = not mark.exists()
    mark.touch()

    def started():
        notify.ready("hung-node: " + ("blocking the reactor in 2 s" if first else "healthy"))
        if first:
            reactor.callLater(2, time.sleep, 3600)

    reactor.callWhenRunning(reactor.callLater, 0, started)  # after wamp.run's own start-up
    return wamp.run("hung-node", load(), [])


if __name__ == "__main__":
    sys.exit(main())
