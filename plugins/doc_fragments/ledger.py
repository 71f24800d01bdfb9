# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options every ledger module takes: where the ledger is and how long to wait for it."""
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  backend:
    description: Where the ledger is kept.
    type: str
    choices: [sqlite, postgres]
    default: sqlite
  path:
    description:
      - The SQLite ledger file; the first record creates it with its folder.
      - Defaults to C($XDG_DATA_HOME/homeiq/ledger.sqlite3), that is C(~/.local/share/homeiq/ledger.sqlite3)
        of the user running the module.
    type: path
  dsn:
    description:
      - PostgreSQL connection string (libpq C(key=value) pairs or a C(postgresql://) URI) for O(backend=postgres).
        The tables live in the first schema of the connection's search path.
      - Never shown in output or error messages.
    type: str
  timeout:
    description: Seconds to wait for a locked ledger, or to connect to PostgreSQL, before failing.
    type: int
    default: 30
"""
