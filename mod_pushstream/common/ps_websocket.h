/* ps_websocket.h - the RFC 6455 codec of both modules (shared core,
 * mod_pushstream/common/): frame headers (built and decoded), close
 * frames with UTF-8-safe reasons, masking, the handshake accept value, an
 * incremental client-frame parser (mod_pushstream's subscribers) and an
 * incremental UTF-8 validator.  Core: no httpd types (APR / APR-util only).
 * mod_pushstream_wstunnel's frame tracker (pswt_ws.h) and the load
 * generator (bench/loadgen.c) use the same header and close codec.
 *
 * Server -> client frames are built by the caller from
 * ps_ws_frame_header() + the payload (FIN set, never masked); a client's
 * frames (the tunnel towards its back end, the load generator) with
 * ps_ws_frame_header_masked() + ps_ws_mask().
 * Client -> server bytes go through a ps_ws_parser_t, which hands back one
 * event at a time (complete messages, control frames, errors).
 */
#ifndef PS_WEBSOCKET_H
#define PS_WEBSOCKET_H

#include <apr.h>
#include <apr_pools.h>

/* ---- UTF-8 ------------------------------------------------------------- */

/* Incremental validator (RFC 3629): rejects overlong forms, surrogates
 * (U+D800..U+DFFF), code points above U+10FFFF and stray continuation
 * bytes.  Input may be split anywhere; once invalid it stays invalid. */
typedef struct ps_utf8_state_t {
    unsigned char need;     /* continuation bytes still expected */
    unsigned char lo, hi;   /* allowed range of the next continuation byte */
    unsigned char bad;      /* 1 once an invalid byte was seen */
} ps_utf8_state_t;

void ps_utf8_init(ps_utf8_state_t *st);

/* Feed len bytes.  Returns 1 while the input is valid so far (possibly
 * ending inside a character), 0 once it is invalid.  On the first failure
 * *bad_off (when not NULL) is the offset of the offending byte within s. */
int ps_utf8_feed(ps_utf8_state_t *st, const char *s, apr_size_t len,
                 apr_size_t *bad_off);

/* 1 when everything fed so far is valid and ends on a character boundary
 * (a complete string); 0 when invalid or truncated. */
int ps_utf8_complete(const ps_utf8_state_t *st);

/* Whole-string check: 1 when s[0..len) is complete, valid UTF-8. */
int ps_utf8_valid(const char *s, apr_size_t len);

/* ---- handshake and server frames --------------------------------------- */

#define PS_WS_GUID        "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define PS_WS_ACCEPT_LEN  28              /* base64 of a 20-byte SHA-1 */

/* Sec-WebSocket-Accept for the client's Sec-WebSocket-Key (used verbatim,
 * not decoded or trimmed): base64(SHA-1(key + GUID)).  A NUL-terminated
 * PS_WS_ACCEPT_LEN-char string from p. */
const char *ps_ws_accept(apr_pool_t *p, const char *key);

/* Opcodes. */
#define PS_WS_OP_CONT    0x0
#define PS_WS_OP_TEXT    0x1
#define PS_WS_OP_BINARY  0x2
#define PS_WS_OP_CLOSE   0x8
#define PS_WS_OP_PING    0x9
#define PS_WS_OP_PONG    0xA

/* Close codes used by this module (RFC 6455 7.4.1). */
#define PS_WS_CLOSE_NORMAL        1000
#define PS_WS_CLOSE_GOING_AWAY    1001
#define PS_WS_CLOSE_PROTOCOL      1002
#define PS_WS_CLOSE_UNSUPPORTED   1003
#define PS_WS_CLOSE_NO_STATUS     1005   /* never on the wire: "no code" */
#define PS_WS_CLOSE_INVALID_DATA  1007
#define PS_WS_CLOSE_POLICY        1008
#define PS_WS_CLOSE_TOO_BIG       1009
#define PS_WS_CLOSE_INTERNAL      1011

/* Longest frame header: 2 + 8 (64-bit length), unmasked. */
#define PS_WS_MAX_HEADER   10
/* Control frame payloads; close reasons after the 2-byte code. */
#define PS_WS_MAX_CONTROL  125
#define PS_WS_MAX_REASON   123

/* Server frame header: FIN set, not masked, opcode & 0x0F, minimal
 * 7/16/64-bit length.  Writes 2, 4 or 10 bytes to out; returns the count. */
apr_size_t ps_ws_frame_header(unsigned char out[PS_WS_MAX_HEADER], int opcode,
                              apr_uint64_t len);

/* Longest frame header of any peer: 2 + 8 (64-bit length) + 4 (mask key). */
#define PS_WS_MAX_FRAME_HEADER 14

/* A frame header with FIN set and a minimal length, masked with key when
 * key is not NULL (the key follows the length).  Writes 2..14 bytes to out;
 * returns the count.  The payload is the caller's to mask (ps_ws_mask). */
apr_size_t ps_ws_frame_header_masked(unsigned char out[PS_WS_MAX_FRAME_HEADER],
                                     int opcode, apr_uint64_t len,
                                     const unsigned char *key);

/* A frame header as read from the wire. */
typedef struct ps_ws_header_t {
    int fin;
    int rsv;                       /* the 3 RSV bits, 0..7 */
    int opcode;
    int masked;
    unsigned char key[4];          /* when masked */
    apr_uint64_t len;              /* payload length */
} ps_ws_header_t;

/* Decode the header at buf[0..avail): its length (2..14), 0 when avail
 * does not hold all of it yet, -1 when a 64-bit length has its top bit
 * set.  Nothing else is judged (opcode, RSV, lengths of control frames:
 * the caller's rules). */
int ps_ws_header_parse(const unsigned char *buf, apr_size_t avail,
                       ps_ws_header_t *h);

/* Close frame payload: code (big-endian) + reason, the reason cut to
 * PS_WS_MAX_REASON bytes without splitting a UTF-8 sequence.  code <= 0
 * gives an empty payload (no code, reason ignored).  reason may be NULL.
 * Returns the payload length (0..125). */
apr_size_t ps_ws_close_payload(char out[PS_WS_MAX_CONTROL], int code,
                               const char *reason, apr_size_t len);

/* A whole close frame (header + ps_ws_close_payload()); returns its length
 * (2..127).  ps_ws_close_frame(out, 0, NULL, 0) is "\x88\x00". */
#define PS_WS_MAX_CLOSE_FRAME (2 + PS_WS_MAX_CONTROL)
apr_size_t ps_ws_close_frame(char out[PS_WS_MAX_CLOSE_FRAME], int code,
                             const char *reason, apr_size_t len);

/* The same close frame masked with key when key is not NULL (a client's
 * close, e.g. the tunnel's towards its back end); out needs
 * PS_WS_MAX_CLOSE_FRAME + 4 bytes. */
apr_size_t ps_ws_close_frame_masked(char out[PS_WS_MAX_CLOSE_FRAME + 4],
                                    int code, const char *reason,
                                    apr_size_t len, const unsigned char *key);

/* 1 when a peer may send this code in a close frame (RFC 6455 7.4 + the
 * IANA registry): 1000-1003, 1007-1014, 3000-4999. */
int ps_ws_close_code_valid(int code);

/* ---- client frame parser ----------------------------------------------- */

typedef enum {
    PS_WS_NEED_MORE = 0,  /* all input consumed, no event yet */
    PS_WS_TEXT,           /* complete text message, valid UTF-8, unmasked */
    PS_WS_BINARY,         /* complete binary message */
    PS_WS_PING,           /* ping payload (0..125 bytes) */
    PS_WS_PONG,           /* pong payload */
    PS_WS_CLOSE,          /* peer's close: close_code (1005 = none), data = reason */
    PS_WS_ERROR           /* protocol violation: close_code is what to send */
} ps_ws_event_e;

typedef struct ps_ws_event_t {
    ps_ws_event_e type;
    /* TEXT/BINARY/PING/PONG: the payload.  CLOSE: the reason (UTF-8, may
     * be empty).  ERROR: a static description, for logs.  Valid until the
     * next ps_ws_feed() call (CLOSE/ERROR: as long as the parser lives).
     * Never NULL for events other than NEED_MORE. */
    const char *data;
    apr_size_t len;
    int close_code;       /* CLOSE and ERROR only, else 0 */
} ps_ws_event_t;

typedef struct ps_ws_parser_t ps_ws_parser_t;

/* A parser for one connection.  max_frame: largest accepted frame payload;
 * max_message: largest reassembled data message (both 0 = no limit; both
 * give PS_WS_ERROR/1009 when exceeded, as soon as the frame header shows
 * it).  The message buffer is malloc'ed, grows with the data actually
 * received (never from a header's claim alone) and is freed with p; a
 * buffer above 64 KiB is released again after its message is delivered. */
ps_ws_parser_t *ps_ws_parser_create(apr_pool_t *p, apr_size_t max_frame,
                                    apr_size_t max_message);

/* Bytes a parser takes, for ps_ws_parser_move() into memory of the
 * caller's (aligned as malloc() aligns). */
apr_size_t ps_ws_parser_size(void);

/* Move src's whole state, message buffer included, into dst: feeding dst
 * goes on exactly where src stopped.  src keeps no buffer (its pool's
 * cleanup frees nothing); dst's buffer is the caller's to free with
 * ps_ws_parser_release(). */
void ps_ws_parser_move(ps_ws_parser_t *dst, ps_ws_parser_t *src);

/* Free the message buffer of a moved parser (the memory of dst itself
 * stays the caller's). */
void ps_ws_parser_release(ps_ws_parser_t *ps);

/* Parse data[0..len).  Returns the first event found (also in ev->type)
 * and sets *consumed to the bytes used up to and including it; call again
 * with the rest.  PS_WS_NEED_MORE: everything was consumed (and buffered
 * as needed), no event.  Input may be split at any byte.
 *
 * Errors (ev->close_code): 1002 - RSV bits, reserved opcode, unmasked
 * frame, fragmented or > 125-byte control frame, continuation without a
 * message, new data frame inside a fragmented message, 1-byte close
 * payload, close code not allowed (ps_ws_close_code_valid), 64-bit length
 * with the top bit set; 1007 - invalid UTF-8 in a text message (detected
 * as soon as the bad byte arrives, or a truncated character at the end of
 * the message) or in a close reason; 1009 - max_frame / max_message
 * exceeded; 1011 - out of memory.  Non-minimal length encodings are
 * accepted on data frames; a control frame with a 16/64-bit length is
 * refused (1002) like any control frame over 125 bytes.
 *
 * After PS_WS_CLOSE or PS_WS_ERROR the parser is finished: every further
 * call returns the same event again and discards its input
 * (*consumed = len). */
ps_ws_event_e ps_ws_feed(ps_ws_parser_t *ps, const char *data, apr_size_t len,
                         apr_size_t *consumed, ps_ws_event_t *ev);

/* Unmask (or mask) n bytes from src into dst with the 4-byte key, starting
 * at key offset off & 3 (the payload offset of src[0]).  dst may equal
 * src.  Exposed for tests and clients. */
void ps_ws_mask(char *dst, const char *src, apr_size_t n,
                const unsigned char key[4], apr_size_t off);

#endif
