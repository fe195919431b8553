"""Hold a lock, as the Python client's first example does.

    DFLOCKD_HOST=127.0.0.1 DFLOCKD_PORT=6388 python example.py
"""

import os

from dflockd_component import Lock

host = os.environ.get("DFLOCKD_HOST", "127.0.0.1")
port = int(os.environ.get("DFLOCKD_PORT", "6388"))

with Lock("my-key", servers=[(host, port)]) as lock:
    # critical section: the lease renews in a daemon thread
    # (the token is a secret: show only its start)
    print(f"acquired: key={lock.key} fence={lock.fence} token={lock.token:.8}... lease={lock.lease}s")
print("released")
