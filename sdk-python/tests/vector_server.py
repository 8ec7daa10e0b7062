"""A real server holding one vector case file exactly as written, deliberately invalid flags
included (the admin API rightly refuses those): the server crate's `vector_store` example
(`flagwire_server::vector_case`, the one loader every suite shares) writes the file, an admin
token `support.ADMIN` and an sdk token `SDK` into a fresh data directory, which `flagwire serve`
then serves. The example is $FLAGWIRE_VECTOR_STORE, or `examples/vector_store` next to the
server binary, where cargo builds it."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest
from support import ADMIN, Server, binary

SDK = "fw_python_sdk_tests_vectors_sdk"


def vector_store_binary() -> pathlib.Path:
    explicit = os.environ.get("FLAGWIRE_VECTOR_STORE")
    if explicit:
        return pathlib.Path(explicit)
    return pathlib.Path(binary()).parent / "examples" / "vector_store"


def vector_server(directory: pathlib.Path, case_file: pathlib.Path) -> Server:
    """A started server holding `case_file` (admin token `support.ADMIN`, sdk token `SDK`)."""
    store = vector_store_binary()
    if not os.access(store, os.X_OK):
        pytest.fail(
            f"no vector_store at {store}: build it (cargo build -p flagwire-server "
            "--example vector_store) or set FLAGWIRE_VECTOR_STORE"
        )
    data = directory / "data"
    subprocess.run(
        [str(store), str(case_file), str(data), ADMIN, SDK], check=True, capture_output=True
    )
    server = Server(data)
    server.start()
    return server
