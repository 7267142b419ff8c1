"""The usual test configuration of mod_pushstream, with room for extra directives.

    conf()                                    # the typical config below
    conf(server="PushStreamMessageTtl 2s", sub="PushStreamMessageTemplate \"~id~:~text~|\"")

Locations:
    /pub?id=CH          publisher (admin), store on, channels from the `id` argument
    /sub/CH             streaming subscriber      (path from a <LocationMatch> named group)
    /lp/CH              long-polling subscriber
    /poll/CH            polling subscriber
"""


def _lines(extra, indent="    "):
    """Directive lines (a string or a list of strings), indented, ending in a newline."""
    if not extra:
        return ""
    if isinstance(extra, (list, tuple)):
        extra = "\n".join(extra)
    return "\n".join(indent + l.strip() for l in extra.strip().splitlines()) + "\n"


def location(path, body):
    return f"<Location {path}>\n{_lines(body)}</Location>\n"


def location_match(regex, body):
    return f'<LocationMatch "{regex}">\n{_lines(body)}</LocationMatch>\n'


def pub_location(publisher="admin", store="on", extra=""):
    """<Location /pub>: publisher (admin/normal), channels from the `id` argument;
    store=None: no PushStreamStoreMessages line."""
    return location("/pub", f"PushStreamPublisher {publisher}\n"
                            'PushStreamChannelsPath "%{arg:id}"\n'
                            + (f"PushStreamStoreMessages {store}\n" if store else "")
                            + _lines(extra))


def sub_location(prefix, mode="", extra=""):
    """<LocationMatch "^/PREFIX/(?<ch>.+)$"> with a subscriber of MODE ('' = streaming)."""
    body = f"PushStreamSubscriber {mode}".rstrip() + "\n" \
        + 'PushStreamChannelsPath "%{env:MATCH_CH}"\n' + _lines(extra)
    return location_match(f"^/{prefix}/(?<ch>.+)$", body)


def conf(shm="32M", server="", pub="", sub="", lp="", poll="", publisher="admin",
         store="on", extra=""):
    """The typical config. `server`: server-level directives; `pub`/`sub`/`lp`/`poll`:
    extra directives of that location; `extra`: appended verbatim (more locations)."""
    parts = []
    if shm:
        parts.append(f"PushStreamSharedMemorySize {shm}\n")
    parts.append(_lines(server, indent=""))
    parts.append(pub_location(publisher, store, pub))
    parts.append(sub_location("sub", "", sub))
    parts.append(sub_location("lp", "long-polling", lp))
    parts.append(sub_location("poll", "polling", poll))
    parts.append(extra)
    return "\n".join(p for p in parts if p)
