"""Watch where time zones are built: ZoneInfo may read tzdata files (blocking I/O).

Home Assistant reports blocking calls in its event loop (homeassistant/block_async_io.py
patches `open` and friends), but tests skip the file checks, and ZoneInfo opens its
file from C with a cached reference to `io.open`. So this watches the constructor
itself: Python's monitoring API reports every call of `zoneinfo.ZoneInfo` made from
Python code, and the ones made on the event loop's thread by the integration are kept.
"""

from collections.abc import Iterator
from contextlib import contextmanager
import sys
import threading
from types import CodeType, FrameType
from typing import Any
from zoneinfo import ZoneInfo

PACKAGE = "custom_components/cloud_energy_meters/"

_monitoring = sys.monitoring


def _integration_frame(frame: FrameType | None) -> str | None:
    """Return where the integration's code is in this call stack, if it is."""
    while frame is not None:
        code = frame.f_code
        if PACKAGE in code.co_filename.replace("\\", "/"):
            return f"{code.co_filename}:{frame.f_lineno} {code.co_qualname}"
        frame = frame.f_back
    return None


@contextmanager
def zones_built_on_loop() -> Iterator[list[str]]:
    """Yield a list that fills with each place ZoneInfo is built on this thread.

    Enter it on the event loop (an async test does): a construction there is one
    Home Assistant would report as blocking when the zone's file is not cached yet.
    Constructions by the simulator, which shares the loop, are not the integration's
    and are left out.
    """
    loop_thread = threading.get_ident()
    found: list[str] = []
    tool = next(
        tool for tool in range(1, 6) if _monitoring.get_tool(tool) is None
    )  # coverage may hold its own id

    def on_call(_code: CodeType, _offset: int, target: object, _arg0: Any) -> Any:
        if target is not ZoneInfo:
            # This call site calls something else: stop reporting it (cheap).
            return _monitoring.DISABLE
        if threading.get_ident() == loop_thread and (
            where := _integration_frame(sys._getframe(1))
        ):
            found.append(where)
        return None

    _monitoring.use_tool_id(tool, "zones_built_on_loop")
    try:
        _monitoring.register_callback(tool, _monitoring.events.CALL, on_call)
        _monitoring.set_events(tool, _monitoring.events.CALL)
        yield found
    finally:
        _monitoring.set_events(tool, _monitoring.events.NO_EVENTS)
        _monitoring.register_callback(tool, _monitoring.events.CALL, None)
        _monitoring.free_tool_id(tool)
        # Call sites this tool disabled would stay disabled for its next user.
        _monitoring.restart_events()
