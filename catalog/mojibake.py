"""Repair text that went through the wrong encoding before it reached a manifest.

Two kinds are common in scraped catalogs, and both are undone only where the evidence is
unambiguous, so correct text never changes:

- Windows-1252 bytes read as Latin-1: "Mikoláš" stored as "Mikolá\\x9a". Characters
  U+0080–U+009F are C1 control codes, which no title or description means to hold; each
  is the Windows-1252 character of the same byte ("\\x9a" is "š").
- UTF-8 bytes read as Windows-1252 or Latin-1: "Mikoláš" stored as "MikolÃ¡Å¡". The text
  is turned back into those bytes, and repaired only when every non-ASCII byte then forms
  valid UTF-8, which real Latin-1 or Windows-1252 prose practically never does
  ("café" is the byte E9 alone, not a UTF-8 sequence).
"""
import re

C1_CONTROL = re.compile("[\x80-\x9f]")


def windows_1252_character(match: re.Match) -> str:
    try:
        return bytes([ord(match.group())]).decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D: no character in Windows-1252 either
        return match.group()


def as_read_bytes(text: str) -> bytes | None:
    """The bytes that, read as Windows-1252 (or Latin-1 where that leaves a byte undefined), give `text`."""
    raw = bytearray()
    for character in text:
        if ord(character) < 0x100:
            raw.append(ord(character))
            continue
        try:
            raw += character.encode("cp1252")
        except UnicodeEncodeError:
            return None  # a character neither encoding has: the text was never bytes read that way
    return bytes(raw)


def mojibake_repaired(text: str) -> str:
    if text.isascii():
        return text
    raw = as_read_bytes(text)
    if raw is not None:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return C1_CONTROL.sub(windows_1252_character, text)
