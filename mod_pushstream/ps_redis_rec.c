/* ps_redis_rec.c - messages as written in Redis (see ps_redis_rec.h). */

#include <string.h>

#include "ps_redis_rec.h"

/* A decimal number >= 0 ending at a space (or '\n' when last); advances
 * *s.  -1 when malformed. */
static apr_int64_t ps_rec_num(const char **s, const char *end, char stop)
{
    apr_int64_t v = 0;
    int n = 0;

    while (*s < end && **s >= '0' && **s <= '9' && n < 18) {
        v = v * 10 + (**s - '0');
        (*s)++;
        n++;
    }
    if (!n || *s >= end || **s != stop) {
        return -1;
    }
    (*s)++;
    return v;
}

int ps_redis_rec_parse(const char *s, apr_size_t len, ps_redis_rec_t *r)
{
    const char *end = s + len;
    apr_int64_t eid, et;

    r->id = ps_rec_num(&s, end, ' ');
    r->time = ps_rec_num(&s, end, ' ');
    r->tag = ps_rec_num(&s, end, ' ');
    r->expires = ps_rec_num(&s, end, ' ');
    eid = ps_rec_num(&s, end, ' ');
    et = ps_rec_num(&s, end, '\n');
    if (r->id < 1 || r->time < 0 || r->tag < 0 || r->expires < 0 || eid < 0
        || et < 0 || (apr_uint64_t)(eid + et) > (apr_uint64_t)(end - s)) {
        return -1;
    }
    r->event_id = s;
    r->event_id_len = (apr_size_t)eid;
    r->event_type = s + eid;
    r->event_type_len = (apr_size_t)et;
    r->text = s + eid + et;
    r->text_len = (apr_size_t)(end - r->text);
    return 0;
}

int ps_redis_announce_parse(const char *s, apr_size_t len,
                            ps_redis_rec_t *r)
{
    const char *end = s + len, *sp = memchr(s, ' ', len);

    memset(r, 0, sizeof(*r));
    if (!sp || sp == s || end - sp < 3) {
        return -1;
    }
    r->epoch = s;
    r->epoch_len = (apr_size_t)(sp - s);
    s = sp + 1;
    if (s[0] == 'D' && s[1] == '\n') {
        r->deleted = 1;
        r->text = s + 2;
        r->text_len = (apr_size_t)(end - r->text);
        return 0;
    }
    if ((s[0] != '0' && s[0] != '1') || s[1] != ' ') {
        return -1;
    }
    r->stored = s[0] == '1';
    return ps_redis_rec_parse(s + 2, (apr_size_t)(end - s - 2), r);
}
