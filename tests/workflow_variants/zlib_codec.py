"""A user's payload codec (zlib, as Temporal's encryption and compression samples do it), the
converter and the plugin that carry it: what ``replay-check`` needs to decode histories that
workers with this codec wrote."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec
from temporalio.plugin import SimplePlugin

ENCODING = b"binary/zlib"


class ZlibCodec(PayloadCodec):
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            Payload(metadata={"encoding": ENCODING}, data=zlib.compress(p.SerializeToString()))
            for p in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out: list[Payload] = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCODING:
                out.append(p)
                continue
            inner = Payload()
            inner.ParseFromString(zlib.decompress(p.data))
            out.append(inner)
        return out


CONVERTER = dataclasses.replace(pydantic_data_converter, payload_codec=ZlibCodec())


def _with_codec(converter: DataConverter | None) -> DataConverter:
    return dataclasses.replace(converter or pydantic_data_converter, payload_codec=ZlibCodec())


PLUGIN = SimplePlugin("zlib-codec", data_converter=_with_codec)
NOT_A_CONVERTER: Any = object()
