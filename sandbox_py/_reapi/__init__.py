"""The Remote Execution API v2 messages and gRPC stubs, generated at build
time from the official protos in ``protos/`` (see ``generate.py``)."""
try:
    import grpc  # noqa: F401
    from . import bytestream_pb2, bytestream_pb2_grpc  # noqa: F401
    from . import remote_execution_pb2, remote_execution_pb2_grpc  # noqa: F401
except ImportError as e:
    raise ImportError(
        "the gRPC (REAPI) memo store needs the 'remote' extra: pip install "
        "'sandbox_py[remote]' (grpcio, protobuf, googleapis-common-protos), and the "
        "package built with grpcio-tools, which generates sandbox_py/_reapi/*_pb2.py "
        "(python sandbox_py/_reapi/generate.py does it in a source tree): %s" % e) from e
