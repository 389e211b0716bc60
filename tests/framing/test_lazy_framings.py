"""The Kitex-family framings are registered as stand-ins that load their module on use."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tether.framing import CodecConfig, Role, get_framing, registered_framings
from tether.framing.thrift import FRAMINGS, ThriftCodec


def test_stand_ins_carry_the_names_and_priorities_of_the_real_framings() -> None:
    """Each thrift framing is registered under its own name with its own priority."""
    registered = {f.name: f.priority for f in registered_framings()}
    assert {f.name: f.priority for f in FRAMINGS}.items() <= registered.items()


def test_a_stand_in_creates_the_real_codec_for_both_roles() -> None:
    """get_framing('framed').create makes a ThriftCodec, as the real framing does."""
    for role in (Role.CLIENT, Role.SERVER):
        assert isinstance(get_framing("framed").create(role, CodecConfig()), ThriftCodec)


def test_thrift_loads_on_first_use_only() -> None:
    """Detecting and creating native codecs leaves tether.framing.thrift unloaded."""
    script = textwrap.dedent(
        """
        import sys
        from tether.framing import CodecConfig, Role, detect_framing, get_framing

        preface = get_framing("tether").create(Role.CLIENT, CodecConfig()).data_to_send()
        assert detect_framing(preface).name == "tether"
        print("tether.framing.thrift" in sys.modules)
        get_framing("buffered").create(Role.SERVER, CodecConfig())
        print("tether.framing.thrift" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "True"]
