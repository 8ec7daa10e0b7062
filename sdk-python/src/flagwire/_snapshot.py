"""The evaluation engine of docs/evaluation.md, over a compiled, immutable snapshot.

A `Snapshot` is built from the wire form (`flagwire.v1.Snapshot`) once per applied revision:
every flag is compiled into plain Python objects and one generated function
(`flagwire._codegen`: the context check, switch, targets, rules with the everyday clauses
inlined, and the split's hash and choice, in one call), and every fixed outcome, e.g. "rule 2
serves `on` with TARGETING_MATCH", becomes one pre-built `Result`, so evaluating does no
protobuf access and, outside errors, allocates nothing. Snapshots are never mutated: applying a
change builds a new one (sharing the untouched flags), which the client swaps in with one
reference assignment, so readers in any thread or task never wait for the stream applier.

The engine's modules, each using only those before it: `flagwire._values` (value types,
protobuf values as Python), `flagwire._clauses` (clauses as closures and inline templates),
`flagwire._codegen` (a flag's generated function), `flagwire._flags` (compiled flags, segments
and splits), and this one (`Snapshot`: building, applying changes, evaluating).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from flagwire._clauses import Attrs
from flagwire._flags import Flag, Segment
from flagwire._proto.flagwire.v1 import flag_pb2, flag_service_pb2
from flagwire._result import Result
from flagwire._types import ErrorCode, Reason
from flagwire.context import Context

MAX_PREREQUISITE_DEPTH: Final = 16
"""Prerequisite chains deeper than this are not met (writes reject cycles; this guards damaged
data). Depth counts hops from the evaluated flag: 16 can be met, 17 cannot."""


class ApplyError(Exception):
    """A change that does not follow the snapshot's revision (the client resynchronises)."""


def _not_found(key: str) -> Result:
    return Result.error(key, ErrorCode.FLAG_NOT_FOUND, "flag not found", 0)


class Snapshot:
    """One environment at one revision, compiled for evaluation. Immutable."""

    __slots__ = ("environment", "flags", "revision", "segments")

    def __init__(
        self,
        environment: str,
        revision: int,
        flags: dict[str, Flag],
        segments: dict[str, Segment],
    ) -> None:
        self.environment = environment
        self.revision = revision
        self.flags = flags
        self.segments = segments

    @classmethod
    def build(
        cls,
        environment: str,
        revision: int,
        flags: Iterable[flag_pb2.Flag],
        segments: Iterable[flag_pb2.Segment] = (),
    ) -> Snapshot:
        compiled = {f.key: Flag(f, environment) for f in flags}
        segs = {s.key: Segment(s) for s in segments if s.environment in ("", environment)}
        return cls(environment, revision, compiled, segs)

    @classmethod
    def from_proto(cls, snapshot: flag_service_pb2.Snapshot) -> Snapshot:
        return cls.build(snapshot.environment, snapshot.revision, snapshot.flags, snapshot.segments)

    def to_proto(self) -> flag_service_pb2.Snapshot:
        """The wire form, e.g. for a bootstrap file (flags and segments sorted by key)."""
        return flag_service_pb2.Snapshot(
            environment=self.environment,
            revision=self.revision,
            flags=[self.flags[k].proto for k in sorted(self.flags)],
            segments=[self.segments[k].proto for k in sorted(self.segments)],
        )

    def apply(self, change: flag_service_pb2.Change) -> tuple[Snapshot, tuple[str, ...]]:
        """The snapshot after `change` (which must follow this revision) and the keys of the
        flags it may have changed. Raises ApplyError on a gap or an old change."""
        if change.revision != self.revision + 1:
            raise ApplyError(f"change {change.revision} does not follow revision {self.revision}")
        flags, segments = self.flags, self.segments
        kind = change.WhichOneof("kind")
        changed: tuple[str, ...] = ()
        if kind == "flag_upserted":
            flags = dict(flags)
            flags[change.flag_upserted.key] = Flag(change.flag_upserted, self.environment)
            changed = (change.flag_upserted.key,)
        elif kind == "flags_upserted":
            # Several flags in one revision (the kill switch): all land in the one new snapshot,
            # which replaces the old one at once, so no evaluation sees half of the batch.
            flags = dict(flags)
            for f in change.flags_upserted.flags:
                flags[f.key] = Flag(f, self.environment)
            changed = tuple(dict.fromkeys(f.key for f in change.flags_upserted.flags))
        elif kind == "flag_deleted":
            flags = dict(flags)
            flags.pop(change.flag_deleted, None)
            changed = (change.flag_deleted,)
        elif kind == "segment_upserted":
            segment = change.segment_upserted
            if segment.environment in ("", self.environment):
                segments = dict(segments)
                segments[segment.key] = Segment(segment)
            # Any flag may use the segment: listeners re-read what they need.
            changed = self.flag_keys()
        elif kind == "segment_deleted":
            segments = dict(segments)
            segments.pop(change.segment_deleted, None)
            changed = self.flag_keys()
        return Snapshot(self.environment, change.revision, flags, segments), changed

    def changed_flags(self, newer: Snapshot) -> tuple[str, ...]:
        """Keys of flags that differ between this snapshot and `newer` (added, removed, or at
        another version), sorted."""
        keys = {
            k
            for k, f in newer.flags.items()
            if (old := self.flags.get(k)) is None or old.version != f.version
        }
        keys.update(k for k in self.flags if k not in newer.flags)
        return tuple(sorted(keys))

    def flag_keys(self) -> tuple[str, ...]:
        """Keys of every flag that is not archived, sorted."""
        return tuple(sorted(k for k, f in self.flags.items() if not f.archived))

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(self, key: str, ctx: Context, expected: int | None) -> Result:
        """Evaluates flag `key` for `ctx`; `expected` is the value type the caller wants (a
        `flagwire.v1.ValueType` number), or None for any. Never raises."""
        flag = self.flags.get(key)
        if flag is None or flag.archived:
            return _not_found(key)
        if expected is not None and expected != flag.value_type:
            return flag.type_mismatch
        return flag.evaluate(ctx, self)

    def _resolve(self, flag: Flag, attrs: Attrs, tk: str, depth: int) -> Result:
        if not flag.enabled:
            return flag.off
        for prerequisite, variant in flag.prerequisites:
            if not self._prerequisite_met(prerequisite, variant, attrs, tk, depth + 1):
                return flag.prerequisite_failed
        if tk and flag.targets:
            target = flag.targets.get(tk)
            if target is not None:
                return target
        return flag.rules(attrs, tk, self)

    def _prerequisite_met(self, key: str, want: str, attrs: Attrs, tk: str, depth: int) -> bool:
        if depth > MAX_PREREQUISITE_DEPTH:
            return False
        flag = self.flags.get(key)
        if flag is None or flag.archived:
            return False
        result = self._resolve(flag, attrs, tk, depth)
        return (
            result.error_code is None
            and result.reason is not Reason.DISABLED
            and result.variant == want
        )

    def in_segment(self, key: str, attrs: Attrs, tk: str) -> bool:
        """Whether the context is in segment `key` (of this environment)."""
        segment = self.segments.get(key)
        if segment is None:
            return False
        if tk:
            if tk in segment.excluded:
                return False
            if tk in segment.included:
                return True
        for matches in segment.rules:
            if matches(attrs, tk, self):
                return True
        return False
