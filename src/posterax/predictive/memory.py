"""The memory budget of chunked prediction: ``max_memory`` parsing and the free memory of a device.

``max_memory`` is ``None`` (a quarter of the memory free now on the device that predicts: RAM
that the kernel reports as available on a CPU, ``bytes_limit - bytes_in_use`` of the allocator on
an accelerator), a positive number of bytes or a string such as ``"512MB"``, ``"2GB"`` or
``"1.5GiB"`` (``KB``/``MB``/``GB``/``TB`` are powers of 1000, ``KiB``/``MiB``/``GiB``/``TiB``
powers of 1024). A quarter, not all of it: the free memory is shared with the rest of the process
(the data, the posterior, other arrays the caller holds) and with other processes, and the
estimate of what one chunk needs is an estimate.
"""

from __future__ import annotations

import numbers
import os
import re
from typing import Any

DEFAULT_FRACTION = 0.25  # of the memory free now on the predicting device (max_memory=None)
FALLBACK_BUDGET_BYTES = 512 * 2**20  # when the platform does not say how much is free

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?\s*([a-zA-Z]*)\s*$")


def _invalid(value: Any, where: str, why: str) -> ValueError:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return ValueError(
        f"The 'max_memory' parameter of {where} must be None (a quarter of the free memory), "
        f"a positive number of bytes or a string with a unit such as '512MB', '2GB' or "
        f"'1.5GiB'. Got {text} ({why}). Example: max_memory='2GB'."
    )


def parse_memory(value: Any, *, where: str) -> int | None:
    """``max_memory`` in bytes (``None`` stays ``None``: the caller picks the default).

    Examples
    --------
    >>> parse_memory("1.5GiB", where="f"), parse_memory("512MB", where="f")
    (1610612736, 512000000)
    >>> parse_memory(4096, where="f"), parse_memory(None, where="f")
    (4096, None)
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise _invalid(value, where, "a bool is not a size")
    if isinstance(value, numbers.Integral):
        if value <= 0:
            raise _invalid(value, where, "it must be positive")
        return int(value)
    if isinstance(value, numbers.Real):
        if not value > 0 or value != value or value == float("inf"):
            raise _invalid(value, where, "it must be positive and finite")
        if float(value) != int(value):
            raise _invalid(value, where, "a number of bytes is a whole number")
        return int(value)
    if not isinstance(value, str):
        raise _invalid(value, where, f"a {type(value).__name__} is not a size")
    match = _PATTERN.match(value)
    if match is None:
        raise _invalid(value, where, "not a number followed by a unit")
    number, exponent, unit = match.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise _invalid(
            value, where, f"unknown unit {unit!r}; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
        )
    size = float(number) * 10 ** int(exponent or 0) * factor
    if not size >= 1:
        raise _invalid(value, where, "it must be at least one byte")
    return int(size)


def _available_ram_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` (free plus reclaimable cache), else the free pages
    ``os.sysconf`` reports; ``None`` where neither exists."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None


def free_memory_bytes(device: Any = None) -> int | None:
    """Memory free now on ``device`` (default: JAX's first device), or ``None`` if unknown.

    An accelerator reports its allocator's ``bytes_limit - bytes_in_use``; a CPU (or a device
    without memory statistics) the RAM available to the process.
    """
    if device is None:
        import jax

        device = jax.devices()[0]
    if getattr(device, "platform", "cpu") != "cpu":
        try:
            stats = device.memory_stats() or {}
        except Exception:  # backends without memory statistics raise various errors
            stats = {}
        if "bytes_limit" in stats:
            return max(0, int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)))
    return _available_ram_bytes()


def resolve_budget(max_memory: Any, *, where: str, device: Any = None) -> int:
    """Bytes one chunk of prediction may use: ``max_memory`` parsed, or for ``None`` a quarter
    (:data:`DEFAULT_FRACTION`) of :func:`free_memory_bytes` (512 MiB where that is unknown)."""
    parsed = parse_memory(max_memory, where=where)
    if parsed is not None:
        return parsed
    free = free_memory_bytes(device)
    if free is None:
        return FALLBACK_BUDGET_BYTES
    return max(1, int(DEFAULT_FRACTION * free))


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'`` (binary units, three significant digits)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


__all__ = [
    "DEFAULT_FRACTION",
    "FALLBACK_BUDGET_BYTES",
    "format_bytes",
    "free_memory_bytes",
    "parse_memory",
    "resolve_budget",
]
