"""Where a commit lives on its forge: the repository path from a change's repository URL.

Buildbot reads the owner and name from the source stamp's repository URL (its
``giturlparse``); these are the forms it accepts: ``https://host/owner/name(.git)``,
``ssh://git@host[:port]/owner/name.git``, ``git@host:owner/name.git`` and
``git://host/owner/name``. GitLab's groups make the path longer (``group/sub/name``).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_SCP = re.compile(r"^(?:[^@/\s]+@)?([^:/\s]+):(?!//)(.+)$")  # git@host:owner/name.git


def repository_path(url: str) -> tuple[str, str] | None:
    """(host, "owner/name") of a repository URL, or None when it is not one."""
    url = (url or "").strip()
    if not url:
        return None
    if "://" in url:
        parts = urlsplit(url)
        host, path = parts.hostname or "", parts.path
    else:
        m = _SCP.match(url)
        if m is None:
            return None
        host, path = m.group(1), m.group(2)
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    # Bitbucket Server clone URLs: /scm/PROJECT/repo (https) - the /scm prefix is not the owner
    if path.startswith("scm/") and path.count("/") >= 2:
        path = path[4:]
    if not host or path.count("/") < 1 or "" in path.split("/"):
        return None
    return host, path


def owner_and_name(url: str) -> tuple[str, str] | None:
    """("owner", "name"): the last two parts of the path (GitHub, Gitea, Bitbucket)."""
    found = repository_path(url)
    if found is None:
        return None
    owner, _, name = found[1].rpartition("/")
    return owner.rpartition("/")[2], name
