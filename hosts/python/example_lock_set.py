"""Two accounts or neither: a lock set.

    DFLOCKD_HOST=127.0.0.1 DFLOCKD_PORT=6388 python example_lock_set.py
"""

import os
import sys

from dflockd_component import LockSet

servers = [(os.environ.get("DFLOCKD_HOST", "127.0.0.1"), int(os.environ.get("DFLOCKD_PORT", "6388")))]

try:
    # Whatever order they are named in, the set takes them in one order: two
    # transfers on the same accounts never wait for each other in a cycle.
    with LockSet(["account:42", "account:17"], acquire_timeout_s=10, servers=servers) as accounts:
        fences = ", ".join(str(g.fence) for g in accounts.grants)
        print(f"holding {' and '.join(accounts.keys)} (fences {fences}): moving money")
    print("released both")
except TimeoutError:
    sys.exit("the accounts were not both free within 10 s")
