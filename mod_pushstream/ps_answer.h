/* ps_answer.h - the answer of a request, before httpd or the publisher port
 * turns it into a response: status, explain header and body.  Core: no httpd
 * types; below every module that answers (publish, Redis, auth). */
#ifndef PS_ANSWER_H
#define PS_ANSWER_H

#include <string.h>
#include <apr.h>

/* Something the caller should log about the answer. */
typedef enum {
    PS_ANS_LOG_NONE = 0,
    PS_ANS_LOG_FULL,               /* PS0050: shared memory is full */
    PS_ANS_LOG_CTRL_ID             /* PS0070: channel id with control byte */
} ps_answer_log_e;

typedef struct ps_answer_t {
    int status;                    /* HTTP status */
    const char *explain;           /* X-Nginx-PushStream-Explain, or NULL */
    const char *allow;             /* Allow (405), or NULL */
    const char *www_auth;          /* WWW-Authenticate (401/403), or NULL */
    const char *retry_after;       /* Retry-After (503), or NULL */
    const char *ctype;             /* NULL = no body (Content-Length: 0) */
    const char *body;
    apr_size_t len;
    int log;                       /* ps_answer_log_e */
    unsigned char ctrl;            /* the byte of PS_ANS_LOG_CTRL_ID */
} ps_answer_t;

/* Explain text of every refusal for a full segment (publishers,
 * subscribers, the publisher port), with status 500. */
#define PS_EXPLAIN_FULL "Shared memory is full."

/* Header-only answer. */
static APR_INLINE void ps_answer_set(ps_answer_t *a, int status,
                                     const char *explain)
{
    memset(a, 0, sizeof(*a));
    a->status = status;
    a->explain = explain;
}

#endif
