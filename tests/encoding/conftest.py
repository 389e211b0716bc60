"""Shared set-up for the encoding tests: the kitchen-sink Thrift IDL and a full instance."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import thriftpy2

KITCHEN_IDL = Path(__file__).with_name("kitchen.thrift")


def load_kitchen() -> ModuleType:
    """``kitchen.thrift`` as a thriftpy2 module (parsed once; later calls return the cache)."""
    return thriftpy2.load(str(KITCHEN_IDL), module_name="kitchen_thrift")


@pytest.fixture
def full_kitchen() -> Any:
    """A Kitchen with every field set (sets as lists: thriftpy2 decodes sets to lists)."""
    kitchen = load_kitchen()
    return kitchen.Kitchen(
        flag=True,
        tiny=-128,
        small=-32768,
        medium=2**31 - 1,
        big=-(2**63),
        ratio=-1.5,
        text="héllo\n",
        blob=b"\x00\xff",
        color=kitchen.Color.BLUE,
        leaf=kitchen.Leaf(n=7, blob=b"leaf"),
        leaves=[kitchen.Leaf(n=1), kitchen.Leaf(n=2, blob=b"")],
        tags=["a", "b"],
        buckets={1: [b"x", b""], -2: []},
        by_color={kitchen.Color.RED: kitchen.Leaf(n=3)},
        labels={"k": "v", "": ""},
        matrix=[[1, 2], [], [3]],
        switches={True: 0.5, False: -2.0},
        by_ratio={1.25: "one and a quarter"},
        by_blob={b"\x01": 2**62},
        colors=[kitchen.Color.RED, kitchen.Color.GREEN],
        counts={"n": -1},
    )
