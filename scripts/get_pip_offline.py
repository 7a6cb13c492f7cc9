"""Stand-in for the get-pip script ansible-test downloads (its host is unreachable here).

ansible-test runs this as ``python get_pip.py <pip args...>``: we install pip with
ensurepip, then hand the same arguments to ``python -m pip install`` minus the flags
that only get-pip understands.
"""
import subprocess
import sys

GET_PIP_ONLY_FLAGS = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY_FLAGS]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
