"""Settings every test process needs before anything imports grpc."""

import os

# As the coordinator, agent and CLI entry points do (see coordinator/__main__.py): the tests
# run git and other subprocesses while their own channels are open.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
