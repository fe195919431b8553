"""Hold a lock, as the Python client's first example does.

    pip install dflockd-component
    DFLOCKD_HOST=127.0.0.1 DFLOCKD_PORT=6388 python example.py
"""

import os
import sys

from dflockd_component import Lock

servers = [(os.environ.get("DFLOCKD_HOST", "127.0.0.1"), int(os.environ.get("DFLOCKD_PORT", "6388")))]

try:
    with Lock("my-key", acquire_timeout_s=10, lease_ttl_s=20, servers=servers) as lock:
        # The critical section. The lease renews in a background thread for as
        # long as it takes. The token is a secret: show only its start.
        print(f"acquired: key={lock.key} fence={lock.fence} token={lock.token:.8}... lease={lock.lease}s")
    print("released")
except TimeoutError:
    sys.exit("my-key: someone else held it for 10 s")
except ConnectionError as failure:
    sys.exit(f"no dflockd at {servers[0][0]}:{servers[0][1]}: {failure}")
