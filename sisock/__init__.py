"""sisock: a telescope site's housekeeping data, served to Grafana over WAMP."""
import sys

__version__ = "0.1.0"

# sisock talks JSON, MessagePack or CBOR over WAMP, never UBJSON, so autobahn must
# not import bjdata: installed by pip alone (crossbar pulls it in), bjdata is built
# against NumPy 1.x (its build needs oldest-supported-numpy) and prints NumPy 2's
# "_ARRAY_API not found" traceback at every import. An already imported bjdata stays.
sys.modules.setdefault("bjdata", None)  # type: ignore[arg-type]  # None there is how Python blocks an import
