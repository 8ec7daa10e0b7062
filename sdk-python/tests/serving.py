"""Snapshots whose flags serve exactly what a metrics test names: a flag per (flag, variant,
cohort, rollout id), serving that variant to every unit through a one-entry split labelled
`cohort` with that rollout id (or a plain default rule when there is neither)."""

from __future__ import annotations

from collections.abc import Iterable

from flagwire._proto.flagwire.v1 import flag_pb2, flag_service_pb2
from flagwire._snapshot import Snapshot

ENVIRONMENT = "prod"

Served = tuple[str, str, str, str]
"""(flag, variant, cohort, rollout id)."""


def serving_flag(flag: str, variant: str, cohort: str = "", rollout_id: str = "") -> flag_pb2.Flag:
    """A string flag serving `variant` to everyone, in `cohort` of `rollout_id` if given."""
    message = flag_pb2.Flag(
        key=flag,
        type=flag_pb2.VALUE_TYPE_STRING,
        version=1,
        variants=[
            flag_pb2.Variant(key=variant, value=flag_pb2.FlagValue(string_value=variant)),
            flag_pb2.Variant(key="other", value=flag_pb2.FlagValue(string_value="other")),
        ],
    )
    config = message.environments[ENVIRONMENT]
    config.enabled = True
    config.off_variant = "other"
    if cohort or rollout_id:
        split = config.default_rule.split
        split.salt = flag
        split.rollout_id = rollout_id
        split.entries.add(variant=variant, weight=10_000, label=cohort)
    else:
        config.default_rule.variant = variant
    return message


def serving_snapshot(served: Iterable[Served], more: Iterable[flag_pb2.Flag] = ()) -> Snapshot:
    """A snapshot of one `serving_flag` per entry of `served`, and the flags `more` (flag keys
    must differ)."""
    flags = [serving_flag(*s) for s in served] + list(more)
    assert len({f.key for f in flags}) == len(flags), "one entry per flag"
    message = flag_service_pb2.Snapshot(environment=ENVIRONMENT, revision=1, flags=flags)
    return Snapshot.from_proto(message)
