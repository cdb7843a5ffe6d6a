"""Build step of the Loom Python SDK: generates loom_client/_pb/ from the
.proto files with protoc (Debian's protobuf-compiler) while the package is
built, so the SDK always speaks the contract of the checkout it is built
from. The .proto files are found in ../../protocol (this repository) or in
$LOOM_PROTO_DIR."""
import glob
import os
import re
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def proto_dir():
    d = os.environ.get("LOOM_PROTO_DIR") or os.path.join(HERE, "..", "..", "protocol")
    if not glob.glob(os.path.join(d, "loom", "v1", "*.proto")):
        raise SystemExit("loom-client: no loom/v1/*.proto under %s (set LOOM_PROTO_DIR)" % d)
    return d


def generate(out_pkg_dir):
    """protoc --python_out into out_pkg_dir/_pb, imports made package-relative."""
    src = proto_dir()
    out = os.path.join(out_pkg_dir, "_pb")
    os.makedirs(out, exist_ok=True)
    protos = sorted(glob.glob(os.path.join(src, "loom", "v1", "*.proto")))
    subprocess.check_call(["protoc", "-I" + src, "--python_out=" + out] + protos)
    for py in glob.glob(os.path.join(out, "loom", "v1", "*_pb2.py")):
        with open(py) as f:
            text = f.read()
        text = re.sub(r"^from loom\.v1 import", "from loom_client._pb.loom.v1 import", text,
                      flags=re.M)
        with open(py, "w") as f:
            f.write(text)
    for d in (out, os.path.join(out, "loom"), os.path.join(out, "loom", "v1")):
        open(os.path.join(d, "__init__.py"), "a").close()


class BuildWithProtos(build_py):
    def run(self):
        super().run()
        generate(os.path.join(self.build_lib, "loom_client"))


setup(cmdclass={"build_py": BuildWithProtos})
