/* ps_msgview.h - a read-only view of one message, as templates see it.
 *
 * Core header: no httpd types. The store copies messages out of shared
 * memory into these views; special messages (ping, channel deleted, timed
 * out) are built directly as views.
 */
#ifndef PS_MSGVIEW_H
#define PS_MSGVIEW_H

#include <apr.h>

#define PS_MSG_ID_PING      (-1)
#define PS_MSG_ID_DELETED   (-2)
#define PS_MSG_ID_TIMEDOUT  (-3)

typedef struct ps_msgview_t {
    apr_int64_t id;            /* per-channel id; <0 for special messages */
    const char *text;          /* raw bytes, binary-safe */
    apr_size_t text_len;
    const char *channel;       /* channel id ("" for ping / timeout) */
    apr_size_t channel_len;
    apr_int64_t time;          /* publish time, seconds since the epoch; 0 = epoch */
    apr_int64_t tag;           /* 0 for special messages */
    const char *event_id;      /* may be NULL = "" */
    apr_size_t event_id_len;
    const char *event_type;    /* may be NULL = "" */
    apr_size_t event_type_len;
} ps_msgview_t;

#endif
