"""gRPC adapters: thin servicers that translate protobuf to domain calls and back."""
