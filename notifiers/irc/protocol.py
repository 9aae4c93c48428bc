"""The IRC wire format (RFC 1459/2812): parse a received line, build a line to send.

Only what a bot needs: prefix, command and parameters (IRCv3 message tags are skipped). Text
sent is made safe here: CR, LF and NUL never reach the wire (they would end the line early and
let a build's text inject IRC commands), and long text is split so that each line fits the
512-byte limit once the server has added our prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LINE = 512
# What a server prepends when relaying our PRIVMSG (":nick!user@host "); kept generous.
RELAY_RESERVE = 100


@dataclass(frozen=True)
class Message:
    command: str
    params: tuple[str, ...] = ()
    prefix: str = ""

    @property
    def nick(self) -> str:
        """The sender's nick (the prefix up to '!')."""
        return self.prefix.split("!", 1)[0]

    def param(self, i: int) -> str:
        return self.params[i] if i < len(self.params) else ""


def parse(line: str) -> Message | None:
    """One received line (without CR LF) -> a Message; None for an empty or tag-only line."""
    rest = line.rstrip("\r\n")
    if rest.startswith("@"):  # IRCv3 tags: not used
        rest = rest.partition(" ")[2]
    prefix = ""
    if rest.startswith(":"):
        prefix, _, rest = rest[1:].partition(" ")
    rest = rest.lstrip(" ")
    if not rest:
        return None
    trailing: str | None = None
    if " :" in rest:
        rest, _, trailing = rest.partition(" :")
    elif rest.startswith(":"):
        rest, trailing = "", rest[1:]
    words = rest.split()
    if not words:
        return None
    params = words[1:] + ([trailing] if trailing is not None else [])
    return Message(words[0].upper(), tuple(params), prefix)


def clean(text: str) -> str:
    """Text safe inside one line: no CR, LF or NUL."""
    return text.replace("\r", " ").replace("\n", " ").replace("\0", "")


def line(command: str, *params: str) -> str:
    """A line to send; the last parameter is sent as trailing (it may contain spaces)."""
    parts = [command]
    for i, p in enumerate(params):
        p = clean(p)
        last = i == len(params) - 1
        if last and (not p or " " in p or p.startswith(":")):
            parts.append(":" + p)
        else:
            parts.append(p)
    return " ".join(parts)


def split_text(text: str, limit: int) -> list[str]:
    """`text` as lines of at most `limit` UTF-8 bytes each (at spaces where possible); its own
    line breaks start new lines; empty lines are dropped."""
    out: list[str] = []
    for para in text.replace("\r", "").split("\n"):
        para = clean(para).rstrip()
        while para:
            if len(para.encode()) <= limit:
                out.append(para)
                break
            cut = _cut(para, limit)
            out.append(para[:cut].rstrip())
            para = para[cut:].lstrip()
    return out


def _cut(text: str, limit: int) -> int:
    """An index where `text` can be cut so that text[:index] fits in `limit` bytes."""
    end = 0
    size = 0
    for i, ch in enumerate(text):
        size += len(ch.encode())
        if size > limit:
            break
        end = i + 1
    space = text.rfind(" ", 0, end)
    return space if space > end // 2 else max(end, 1)


def messages(command: str, target: str, text: str) -> list[str]:
    """PRIVMSG/NOTICE lines carrying `text` to `target`, each within the line limit."""
    room = MAX_LINE - 2 - RELAY_RESERVE - len(f"{command} {target} :".encode())
    return [f"{command} {clean(target)} :{part}" for part in split_text(text, room)]


def is_channel(target: str) -> bool:
    return target[:1] in ("#", "&", "+", "!")


def lower(name: str) -> str:
    """IRC case folding (rfc1459: []\\~ are the lower case of {}|^)."""
    return name.lower().translate(str.maketrans("[]\\~", "{}|^"))
