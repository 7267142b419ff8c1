/* ps_test_render.h - what the template, EventSource and encoder unit tests
 * share: a typical message, and the check that a renderer's three entry points
 * agree: measure, render_to into a measured buffer, and the pool render
 * (ps_template.h and ps_eventsource.h have the same three). */
#ifndef PS_TEST_RENDER_H
#define PS_TEST_RENDER_H

#include <stdlib.h>

#include "ps_test.h"
#include "ps_template.h"

/* A message of id with text (len bytes) on channel "ch1", tag 2, published
 * at Sun, 22 Nov 2026 20:09:01 GMT; no event id or type. */
static inline ps_msgview_t ps_test_msg(apr_int64_t id, const char *text,
                                       apr_size_t len)
{
    ps_msgview_t m;

    memset(&m, 0, sizeof(m));
    m.id = id;
    m.text = text;
    m.text_len = len;
    m.channel = "ch1";
    m.channel_len = 3;
    m.time = 1795378141;
    m.tag = 2;
    return m;
}

/* m's event id and type (NULL: none). */
static inline void ps_test_msg_event(ps_msgview_t *m, const char *id,
                                     const char *type)
{
    m->event_id = id;
    m->event_id_len = id ? strlen(id) : 0;
    m->event_type = type;
    m->event_type_len = type ? strlen(type) : 0;
}

typedef apr_size_t (*ps_test_measure_fn)(const ps_template_t *t, const ps_msgview_t *m);
typedef apr_size_t (*ps_test_render_to_fn)(const ps_template_t *t, const ps_msgview_t *m,
                                           char *buf);
typedef char *(*ps_test_render_fn)(apr_pool_t *p, const ps_template_t *t,
                                   const ps_msgview_t *m, apr_size_t *out_len);

/* Render m with t and check that measure == render_to (guard byte after
 * the measured size intact) == the pool render (NUL-terminated); returns
 * the pool output, its length in *out_len. */
static inline char *ps_test_render(apr_pool_t *p, ps_test_measure_fn measure,
                                   ps_test_render_to_fn render_to,
                                   ps_test_render_fn render, const ps_template_t *t,
                                   const ps_msgview_t *m, apr_size_t *out_len)
{
    apr_size_t need = measure(t, m), n, n2;
    char *buf = malloc(need + 1), *out;

    assert_non_null(buf);
    buf[need] = '\x5a';                      /* guard byte */
    n = render_to(t, m, buf);
    assert_int_equal(n, need);
    assert_int_equal((unsigned char)buf[need], 0x5a);
    out = render(p, t, m, &n2);
    assert_int_equal(n2, n);
    assert_memory_equal(out, buf, n);
    assert_int_equal(out[n], '\0');
    free(buf);
    *out_len = n;
    return out;
}

#endif
