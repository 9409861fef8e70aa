"""Text files as people's tools save them: UTF-8 with or without a byte-order mark, or UTF-16
with one, which Windows PowerShell 5 writes for `>` and `Out-File` (`echo $pass > pass.txt`,
`"project = 'x'" > .keyvault.toml`). Pure; imported on the hot path of `env` (project files).
"""

from __future__ import annotations

UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # little-endian (what Windows writes), big-endian


def is_utf16(data: bytes) -> bool:
    """Whether `data` starts with a UTF-16 byte-order mark."""
    return data.startswith(UTF16_BOMS)


def decode_saved(data: bytes) -> str:
    """`data` as text, without its byte-order mark; UnicodeDecodeError when it is neither
    UTF-16 with a mark nor UTF-8 (the caller says so without quoting the bytes)."""
    if is_utf16(data):
        return data.decode("utf-16")
    # not the utf-8-sig codec: its module would be one more import on the fast path
    return data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
