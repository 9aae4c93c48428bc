"""Version-control adapters: the git subprocesses behind the change sources (GitPoller)."""
