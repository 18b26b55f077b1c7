"""Generate the REAPI Python modules from the vendored official protos.

Run by setup.py at build time (``grpcio-tools`` and
``googleapis-common-protos`` are build requirements), or by hand:
``python sandbox_py/_reapi/generate.py``.  The modules land flat in this
package, with their imports of one another made relative, so that they never
claim the top-level names ``build`` or ``google.bytestream``."""
import os
import re
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOS = os.path.join(HERE, "protos")
#: The vendored files (flat in protos/) and the paths the protos import them by.
SOURCES = {"semver.proto": "build/bazel/semver/semver.proto",
           "remote_execution.proto": "build/bazel/remote/execution/v2/remote_execution.proto",
           "bytestream.proto": "google/bytestream/bytestream.proto"}
# module path of a generated file -> its flat name here
LOCAL = {"build.bazel.semver.semver_pb2": "semver_pb2",
         "build.bazel.remote.execution.v2.remote_execution_pb2": "remote_execution_pb2",
         "build.bazel.remote.execution.v2.remote_execution_pb2_grpc":
             "remote_execution_pb2_grpc",
         "google.bytestream.bytestream_pb2": "bytestream_pb2",
         "google.bytestream.bytestream_pb2_grpc": "bytestream_pb2_grpc"}


def outputs():
    return [os.path.join(HERE, m + ".py") for m in LOCAL.values()]


def up_to_date() -> bool:
    newest = max(os.path.getmtime(os.path.join(PROTOS, s)) for s in SOURCES)
    return all(os.path.exists(o) and os.path.getmtime(o) >= newest for o in outputs())


def _includes(tmp):
    """Include paths: the vendored protos laid out under the paths they are
    imported by, googleapis-common-protos' (google/api, google/rpc,
    google/longrunning) and grpc_tools' well-known types."""
    import google.api  # googleapis-common-protos
    import grpc_tools
    for name, path in SOURCES.items():
        os.makedirs(os.path.join(tmp, os.path.dirname(path)), exist_ok=True)
        shutil.copy(os.path.join(PROTOS, name), os.path.join(tmp, path))
    common = os.path.dirname(os.path.dirname(os.path.abspath(google.api.__path__[0])))
    # googleapis-common-protos ships google/longrunning/operations.proto as
    # operations_proto.proto (same package and messages; its operations_pb2
    # registers it under the official name): give protoc the official name.
    lro = os.path.join(tmp, "google", "longrunning")
    os.makedirs(lro, exist_ok=True)
    shutil.copy(os.path.join(common, "google", "longrunning", "operations_proto.proto"),
                os.path.join(lro, "operations.proto"))
    return [tmp, common, os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")]


def generate() -> None:
    from grpc_tools import protoc
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        args = ["protoc"] + ["-I" + i for i in _includes(os.path.join(tmp, "inc"))] + [
            "--python_out=" + out, "--grpc_python_out=" + out] + list(SOURCES.values())
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed on the REAPI protos: %s" % " ".join(args))
        for module, flat in LOCAL.items():
            src = os.path.join(out, *module.split(".")) + ".py"
            with open(src) as f:
                text = f.read()
            for other, other_flat in LOCAL.items():
                pkg, _, name = other.rpartition(".")
                text = re.sub(r"^from %s import %s\b" % (re.escape(pkg), name),
                              "from . import %s" % other_flat, text, flags=re.M)
            tmp_out = os.path.join(HERE, flat + ".py.tmp")
            with open(tmp_out, "w") as f:
                f.write("# Generated from the vendored protos by generate.py: do not edit.\n"
                        + text)
            os.replace(tmp_out, os.path.join(HERE, flat + ".py"))


if __name__ == "__main__":
    generate()
    print("generated:", *outputs(), sep="\n  ", file=sys.stderr)
