"""Cross-cutting gRPC concerns, one interceptor each: malformed input (input.py), who may call
what (auth.py, from the table in methods.py). `wrapping.py` is their shared handler plumbing."""
