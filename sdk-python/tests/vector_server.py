"""A real server holding one vector case file's flags and segments, as stored: the file becomes
a backup (`flagwire backup`'s format: magic line, then length-delimited `BackupResponse`s with
a header, the store entries and a checksummed trailer) that `flagwire restore` loads into a
fresh data directory, which `flagwire serve` then serves. A restore and not AdminService,
because some vector flags are deliberately invalid and the admin API rightly refuses them
(the server's own vector test loads its store the same way)."""

from __future__ import annotations

import hashlib
import pathlib
import subprocess
from typing import Any

from google.protobuf import json_format
from support import Server, binary

from flagwire._proto.flagwire.v1 import admin_pb2, backup_pb2, flag_pb2

MAGIC = b"flagwire backup\n"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _delimited(message: admin_pb2.BackupResponse) -> bytes:
    data = message.SerializeToString()
    return _varint(len(data)) + data


def store_entries(data: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """The store entries (server/src/store/keys.rs's layout) of a case file: its environment at
    revision 1, its flags, its segments (one without an environment is the file's)."""
    env = data["environment"]
    entries = [
        (b"e/" + env.encode(), flag_pb2.Environment(key=env, revision=1).SerializeToString())
    ]
    for f in data["flags"]:
        flag = json_format.ParseDict(f, flag_pb2.Flag())
        entries.append((b"f/" + flag.key.encode(), flag.SerializeToString()))
    for s in data.get("segments", []):
        segment = json_format.ParseDict(s, flag_pb2.Segment())
        if not segment.environment:
            segment.environment = env
        key = b"s/" + segment.environment.encode() + b"/" + segment.key.encode()
        entries.append((key, segment.SerializeToString()))
    return sorted(entries)


def write_backup(path: pathlib.Path, data: dict[str, Any]) -> None:
    entries = store_entries(data)
    digest = hashlib.sha256()
    for key, value in entries:
        for part in (key, value):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    header = backup_pb2.BackupHeader(format_version=1, revisions={data["environment"]: 1})
    batch = backup_pb2.BackupEntries(
        entries=[backup_pb2.BackupEntry(key=k, value=v) for k, v in entries]
    )
    trailer = backup_pb2.BackupTrailer(entry_count=len(entries), sha256=digest.digest())
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(_delimited(admin_pb2.BackupResponse(header=header)))
        f.write(_delimited(admin_pb2.BackupResponse(entries=batch)))
        f.write(_delimited(admin_pb2.BackupResponse(trailer=trailer)))


def vector_server(directory: pathlib.Path, data: dict[str, Any]) -> Server:
    """A started server (admin token `support.ADMIN`) holding the case file `data`."""
    directory.mkdir(parents=True, exist_ok=True)
    backup = directory / "vectors.backup"
    write_backup(backup, data)
    subprocess.run(
        [binary(), "restore", "--in", str(backup), "--data-dir", str(directory / "data")],
        check=True,
        capture_output=True,
    )
    server = Server(directory / "data")
    server.start()
    return server
