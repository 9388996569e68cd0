"""The getFullComputerInformation answers of one process, and the pieces they are made of.

A node asks for its computer's answer on every pass, and every change to the computer makes the
next answer different. Two levels keep that cheap:

- the whole answer per computer, with the key the caller gives (the computer's id and
  generation, which every change shown in the answer increments): the steady state;
- after a change, each partition's ``ComputerPartition`` encoded once as a `Fragment`, kept with
  the `PartitionSource` it was made from (every stored value of that partition, compared without
  decoding any JSON). Only partitions whose source differs are decoded, viewed and encoded again;
  the answer is assembled from the fragments, byte for byte what encoding the whole
  `computer_view` gives (the codec numbers the fragments' ids where they land).

Fragments are keyed by their full input, never by timestamps, so a kept fragment is never stale.
Only the fragments of the partitions of a computer's latest assembly are kept, and at most
`size` computers (the least recently assembled are forgotten first).

Thread safety (gunicorn gthread workers): readers take no lock; an assembly reads the fragments
of the computer as they are, then swaps in a new dictionary under a lock. Two concurrent
assemblies may each store their own; either is right for the sources it was made from, and an
answer is only served for the exact key it was built for.
"""
from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import TypeVar

from partita.master.api.slap_xml import encode
from partita.master.api.slap_xml.marshal import Fragment, dumps, encode_fragment
from partita.master.services.computer_views import ComputerSource, PartitionSource, partition_view, supply_row_view

Fragments = dict[int, tuple[PartitionSource, Fragment]]  # by partition id
_Value = TypeVar("_Value")


class ComputerCache:
    """Encoded getFullComputerInformation answers and partition fragments, for `size` computers."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._answers: dict[str, tuple[Hashable, bytes]] = {}
        self._fragments: dict[str, Fragments] = {}

    def answer(self, reference: str, key: Hashable) -> bytes | None:
        """The answer kept for computer `reference` if it was built for `key`, else None."""
        kept = self._answers.get(reference)
        return kept[1] if kept is not None and kept[0] == key else None

    def assemble(self, key: Hashable, source: ComputerSource) -> bytes:
        """The answer for `source`, re-encoding only the partitions that changed; kept for `key`."""
        kept = self._fragments.get(source.reference, {})
        fragments: Fragments = {}
        for partition in source.partitions:
            fragments[partition.id] = _fragment(partition, kept.get(partition.id))
        supplies = [supply_row_view(source.reference, supply) for supply in source.supplies]
        body = dumps(encode.computer_object(
            source.reference, [fragment for _, fragment in fragments.values()], supplies))
        self._store(source.reference, key, body, fragments)
        return body

    def _store(self, reference: str, key: Hashable, body: bytes, fragments: Fragments) -> None:
        with self._lock:
            _put_last(self._answers, reference, (key, body), self.size)
            _put_last(self._fragments, reference, fragments, self.size)


def _put_last(cache: dict[str, _Value], reference: str, value: _Value, size: int) -> None:
    """Store `value` as the most recent entry of `cache`, forgetting the oldest beyond `size`."""
    cache.pop(reference, None)  # dictionaries keep insertion order: re-inserted, it comes last
    cache[reference] = value
    while len(cache) > size:
        del cache[next(iter(cache))]


def _fragment(partition: PartitionSource,
              kept: tuple[PartitionSource, Fragment] | None) -> tuple[PartitionSource, Fragment]:
    """The kept fragment when it was made from an equal source, else a fresh one."""
    if kept is not None and kept[0] == partition:
        return kept
    view = partition_view(partition)
    return partition, encode_fragment(encode.computer_partition(view))
