#!/usr/bin/env python3
"""Writes the hand-made seed inputs of test/fuzz/corpus/<target>/ (run once;
the files are committed).  Each seed is named for what it exercises.
Fields of multi-field targets are separated by 0x1F (see ps_fuzz.h)."""
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
KEY = b"\x37\xfa\x21\x3d"


def frame(op, payload, fin=True, masked=True, key=KEY, rsv=0, ext=None):
    """One client frame; ext forces a 16/64-bit length encoding."""
    b0 = (0x80 if fin else 0) | rsv | op
    n = len(payload)
    mbit = 0x80 if masked else 0
    if ext == 64 or (ext is None and n > 0xFFFF):
        hdr = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    elif ext == 16 or (ext is None and n > 125):
        hdr = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, mbit | n])
    if not masked:
        return hdr + payload
    body = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
    return hdr + key + body


def ws(flags, split, *frames):
    """Websocket input: limits/split byte, 2-byte split seed, the stream."""
    return bytes([flags]) + struct.pack(">H", split) + b"".join(frames)


WEBSOCKET = {
    "text_hello": ws(0x00, 1, frame(1, b"hello")),
    "binary_split": ws(0x30, 7, frame(2, bytes(range(40)))),
    "fragmented_text": ws(0x20, 3, frame(1, b"frag", fin=False),
                          frame(0, b"men", fin=False), frame(0, b"ted")),
    "ping_between_fragments": ws(0x10, 9, frame(1, b"a", fin=False),
                                 frame(9, b"ping"), frame(0, b"b")),
    "pong": ws(0x00, 2, frame(10, b"pong data")),
    "close_code_reason": ws(0x00, 4, frame(8, b"\x03\xe8bye")),
    "close_empty": ws(0x00, 4, frame(8, b"")),
    "close_one_byte": ws(0x00, 4, frame(8, b"\x03")),
    "close_bad_code": ws(0x00, 4, frame(8, b"\x03\xed")),
    "close_bad_utf8": ws(0x00, 4, frame(8, b"\x03\xe8\xc3")),
    "utf8_multibyte": ws(0x50, 5, frame(1, "h\u00e9\u20ac\U0001F600".encode())),
    "utf8_split_across_frames": ws(0x10, 1, frame(1, b"\xe2\x82", fin=False),
                                   frame(0, b"\xac")),
    "utf8_overlong": ws(0x00, 1, frame(1, b"\xc0\xaf")),
    "utf8_surrogate": ws(0x00, 1, frame(1, b"\xed\xa0\x80")),
    "utf8_truncated": ws(0x00, 1, frame(1, b"ok\xe2\x82")),
    "len16": ws(0x40, 11, frame(2, b"x" * 300)),
    "len16_nonminimal": ws(0x00, 1, frame(2, b"short", ext=16)),
    "len64_nonminimal": ws(0x00, 1, frame(2, b"short", ext=64)),
    "len64_top_bit": ws(0x00, 1, b"\x82\xff\x80" + b"\x00" * 7 + KEY),
    "max_frame_exceeded": ws(0x01, 1, frame(1, b"y" * 40)),
    "max_message_exceeded": ws(0x04, 1, frame(1, b"z" * 20, fin=False),
                               frame(0, b"z" * 20)),
    "unmasked": ws(0x00, 1, frame(1, b"plain", masked=False)),
    "rsv_bits": ws(0x00, 1, frame(1, b"r", rsv=0x40)),
    "reserved_opcode": ws(0x00, 1, frame(3, b"?")),
    "control_fragmented": ws(0x00, 1, frame(9, b"p", fin=False)),
    "control_too_long": ws(0x00, 1, frame(9, b"p" * 126)),
    "cont_without_message": ws(0x00, 1, frame(0, b"c")),
    "data_inside_fragmented": ws(0x00, 1, frame(1, b"a", fin=False),
                                 frame(1, b"b")),
    "many_messages": ws(0xf0, 13, *[frame(1 + i % 2, bytes([65 + i]) * i)
                                    for i in range(12)]),
    "empty_messages": ws(0x10, 1, frame(1, b""), frame(2, b""),
                         frame(1, b"", fin=False), frame(0, b"")),
    "big_buffer_release": ws(0x0c, 1, frame(2, b"B" * 3000),
                             frame(1, b"after")),
    "header_only": ws(0x10, 1, b"\x81"),
}


PATH = {
    # byte 0: max id length selector, then the raw (escaped) path
    "single": b"\x00ch1",
    "multi_backtrack": b"\x00ch1/ch2.b5/ch3",
    "inner_b": b"\x00a.b1x/b.b/c.b2.b3",
    "trailing_slash": b"\x01ch1/",
    "double_slash": b"\x00a//b",
    "lone_slash": b"\x00/",
    "escaped": b"\x02ch%2F1/%41%42.b%32",
    "malformed_escape": b"\x00%zz/%4/%",
    "nul_escape": b"\x00a%00b/c",
    "backtrack_overflow": b"\x00x.b99999999999999999999",
    "wildcard": b"\x03pre*/ALL/ok",
    "long_id": b"\x04" + b"L" * 200,
    "empty": b"\x00",
}

TEMPLATE = {
    # template \x1f text \x1f channel \x1f event-id \x1f event-type \x1f numbers
    "default": b"~text~\x1fhello\x1fch1\x1f\x1f\x1f\x01\x02\x03",
    "all_tokens": b"{\"id\":~id~,\"channel\":\"~channel~\",\"text\":\"~text~\","
                  b"\"tag\":~tag~,\"time\":\"~time~\",\"size\":~size~,"
                  b"\"eid\":\"~event-id~\",\"etype\":\"~event-type~\"}"
                  b"\x1fmsg\x1fch\x1fe1\x1ft1\x1f\x05\x06\x07\x08",
    "json_escape": b"{\"t\":\"~text|json~\"}\x1fa\"b\\c\n\x01\xe2\x80\xa8\x1fc\x1f\x1f\x1f",
    "html_escape": b"<p>~text|html~</p>\x1f<b>&\"'\x1fc\x1f\x1f\x1f",
    "js_escape": b"<script>var m=\"~text|js~\";</script>\x1f</script>\xe2\x80\xa9&\x1fc\x1f\x1f\x1f",
    "case_and_escapes": b"~TEXT|JSON~ ~Channel|Html~ ~event-type|js~\x1fx\x1fy\x1f\x1fz\x1f",
    "unknown_tokens": b"~foo~text~ ~text|xml~ ~~ ~\x1fT\x1f\x1f\x1f\x1f",
    "eventsource_data": b"data: ~text~\x1fline1\nline2\r\nline3\rline4\x1fc\x1fid7\x1fupd\x1f",
    "literal": b"no tokens here\x1ftext\x1f\x1f\x1f\x1f",
    "empty": b"\x1f\x1f\x1f\x1f\x1f",
    "nul_bytes": b"a\x00~text~\x00b\x1fx\x00y\x1f\x1f\x1f\x1f",
}

HEADERS = {
    # one value per line, every parser gets every line
    "http_dates": b"Sun, 06 Nov 1994 08:49:37 GMT\nSunday, 06-Nov-94 08:49:37 GMT\n"
                  b"Sun Nov  6 08:49:37 1994\nThu, 01 Jan 1970 00:00:00 GMT\n",
    "http_date_bad": b"Sun, 32 Nov 1994 08:49:37 GMT\nFri, 31 Dec 9999 23:59:59 GMT\n",
    "tags": b"5\nW/\"7\"\nW/12\n-3\n+4\n99999999999999999999\nW/\n",
    "times": b"30s\n1h 30m\n1h30m\n500ms\n1y1M1w1d\n1m 30\n5m1h\n-1\n",
    "sizes": b"1024\n32k\n256M\n1g\n9223372036854775807\n9999999999999g\n",
    "uints": b"0\n18446744073709551615\n18446744073709551616\n007\n",
    "accept": b"text/plain\ntext/html, text/plain\napplication/xml\n"
              b"text/x-json\ntext/x-yaml\napplication/yaml\n*/*\n///\n",
    "query": b"id=ch1&time=Sun%2C%2006%20Nov%201994%2008%3A49%3A37%20GMT&tag=3"
             b"&last_event_id=e1\n",
    "padding": b"\x10\x20\x30\x40 Mozilla/4.0 (compatible; MSIE 6.0)\n",
    "padding_rules": b"MSIE [1-6],1024,2048:Opera,0,5\n,1,2\nx,1a,3\n",
    # fixed bug: ps_padding_len() wrapped around for min near SIZE_MAX
    "crash_padding_wrap": b"\x00\x00\x00\x05\x00\x00\x0c\n",
}

STATS = {
    # a raw query string; the channel list is its id= argument
    "summary": b"",
    "list": b"id=ch1/ch2",
    "all": b"id=ALL",
    "prefix": b"id=pre*",
    "prefix_after_list": b"id=ch1/ch2/ab*",
    "star_only": b"id=*",
    "too_long": b"id=" + b"x" * 401,
    "nul_prefix": b"id=a%00*",
    "encoded": b"x=1&id=ch%2A&id=second",
    "backtrack": b"id=ch1.b3/ALL.b1",
    "format": b"id=ch1&format=prometheus",
    # issue 20: ids the documents must escape
    "odd_ids": b"id=a%22b/back%5Cslash/x%3C%26%3Ey/bad%FFbyte/caf%C3%A9/yes/123",
    "control_ids": b"id=a%01b/tab%09/nl%0A/nul%00x/del%7F",
}

# fuzz_store: a configuration byte (bits 0-2 max stored, 3-4 ttl, 5 events
# channel, 6-7 inactivity), then requests: an op byte (low 4 bits: 0-4
# publish, 5-6 delete, 7-10 subscribe, 11-12 unsubscribe, else time passes;
# bit 4 store / slot; bit 7 "raw": duplicates reach the store), a list byte
# (1 + bits 0-1 + 4 * bit 2 channels) and one byte per channel (id = b % 5,
# spelling (b / 5) % 4: plain, .bN with N = b >> 6, URL-escaped, non-ASCII
# escaped).
STORE = {
    # DELETE /pub?id=dupA/dupA as the old publisher did it (no dedupe)
    "issue20_delete_twice": bytes([0x0d, 0x10, 0, 0, 0x85, 1, 0, 0,
                                   0x1d, 0x1d, 0x1d]),
    # a subscriber on b, then DELETE b.b1/b, the subscriber leaves
    "issue20_delete_twice_subscribed": bytes([0x0d, 0x07, 0, 1, 0x85, 1, 66, 1,
                                              0x0b, 0x1d, 0x3d, 0x3d]),
    # one id in three spellings, deduped, with the events channel
    "spellings_events": bytes([0x2d, 0x10, 2, 2, 12, 18, 0x06, 2, 2, 12, 18,
                               0x17, 6, 0, 1, 2, 3, 4, 0, 1, 0x4c, 0x2d,
                               0x05, 7, 0, 1, 2, 3, 4, 0, 1, 2, 0x2d, 0x2d]),
}

HTTP1 = {
    "post": b"\x00POST /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Event-Id: 1\r\nEvent-Type: t\r\nAccept: text/plain\r\n\r\nhello",
    "http10": b"\x00\r\nGET /pub?id=a HTTP/1.0\nConnection: keep-alive\n\n",
    "expect": b"\x00PUT /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
              b"Content-Length: 3\r\nContent-Length: 3\r\n\r\n",
    "chunked": b"\x00POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close, TE\r\n\r\n",
    "folded": b"\x00GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
    "small_limit": b"\x01GET / HTTP/1.1\r\nHost: x\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
    "version": b"\x00GET / HTTP/2.0\r\nHost: x\r\n\r\n",
}

# jwt: flags byte, then raw token, JOSE header, claims, Authorization, Cookie
_S = b"\x1f"
JWT = {
    "hs256_grants": b"\x00" + _S + b'{"alg":"HS256","kid":"k1"}' + _S
    + b'{"exp":1800000060,"nbf":1,"pushstream":{"subscribe":["a","room*"],"publish":["a"]}}'
    + _S + b"Bearer a.b.c" + _S + b"x=1; pushstream_token=t",
    "mercure_aud_iss": b"\x03" + _S + b'{"alg":"HS256"}' + _S
    + b'{"aud":["x","aud1"],"iss":"iss1","mercure":{"subscribe":["*"],"publish":["\\u00e9*"]}}',
    "alg_none": b"\x00eyJhbGciOiJub25lIn0.eyJleHAiOjF9." + _S + b'{"alg":"none"}' + _S + b"{}",
    "escapes_numbers": b"\x0c" + _S + b'{"alg":"HS256","kid":"\\u006b1"}' + _S
    + b'{"exp":1.8e9,"x":[true,false,null,-0.5,{"a":{}}],"s":"\\ud83d\\ude00\\n"}',
    "duplicate_kid": b"\x00" + _S + b'{"alg":"HS256","kid":"k1","kid":"k2"}' + _S
    + b'{"exp":1}' + _S + b"bearer\tq" + _S + b'pushstream_token="v"',
    "crit": b"\x00" + _S + b'{"alg":"HS256","crit":["b64"]}' + _S + b"{}",
    "expired": b"\x04" + _S + b'{"alg":"HS256","kid":"k1"}' + _S
    + b'{"exp":1799999999,"pushstream":{"subscribe":[1]}}',
}


def wt(flags, split, *frames):
    """wstrack input: strict/limit/split byte, 2-byte split seed, the stream."""
    return bytes([flags]) + struct.pack(">H", split) + b"".join(frames)


WSTRACK = {
    "client_text": wt(0x01, 3, frame(1, b"hello")),
    "server_unmasked": wt(0x01, 5, frame(2, bytes(range(200)), masked=False)),
    "fragments_ping": wt(0x01, 7, frame(1, b"ab", fin=False), frame(9, b"p"),
                         frame(0, b"cd")),
    "close_code": wt(0x01, 1, frame(8, b"\x03\xe9bye")),
    "close_empty": wt(0x01, 2, frame(8, b"")),
    "len16": wt(0x09, 9, frame(2, b"x" * 300)),
    "len64": wt(0x01, 11, frame(2, b"y" * 40, ext=64)),
    "too_big": wt(0x05, 4, frame(1, b"z" * 100)),
    "too_big_fragments": wt(0x07, 4, frame(1, b"z" * 600, fin=False), frame(0, b"z" * 600)),
    "reserved_opcode_strict": wt(0x01, 6, frame(1, b"ok"), frame(3, b"")),
    "reserved_opcode_passive": wt(0x00, 6, frame(1, b"ok"), frame(3, b""), frame(1, b"x")),
    "long_ping": wt(0x01, 8, frame(9, b"p" * 126)),
    "top_bit": wt(0x01, 1, bytes([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1]) + KEY),
    "built_frames": wt(0x00, 0, bytes([0x05, 0x81, 0x42]) + KEY + b"abcdefgh" * 3
                       + bytes([0xFF]) + "réponse".encode()),
}


def write(target, seeds):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    targets = {"websocket": WEBSOCKET, "wstrack": WSTRACK, "path": PATH, "template": TEMPLATE,
               "headers": HEADERS, "stats": STATS, "http1": HTTP1, "store": STORE,
               "jwt": JWT}
    for t in sys.argv[1:] or targets:
        write(t, targets[t])
