"""The HTTP API: the gRPC contract transcoded to JSON over HTTP under /api/v1/ (see docs/http-api.md)."""
