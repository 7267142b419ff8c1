/* fuzz_stats.c - the statistics location's query handling: the `id=`
 * argument (ps_path_query_arg), its channel list (ps_path_unescape +
 * ps_path_parse, as ps_http_parse_path does), the ALL / prefix* / list /
 * too-long choice (ps_path_stats_select), the prefix filter
 * (ps_path_has_prefix) and the documents listing the channels (ps_info).
 *
 * Input: a raw query string (r->args).  Invariants:
 *   - the argument lookup matches a naive split on '&';
 *   - the choice matches a naive scan of the ids, for several limits;
 *   - the prefix is exactly the text of the first restricted id before
 *     its first '*' (NULL only for a literal "ALL");
 *   - the prefix filter matches a naive comparison;
 *   - every document is as long as it says, for every format;
 *   - every JSON document (single, group, summarized) parses (a strict
 *     check, ps_json_check.h), whatever bytes the ids hold: the input's
 *     own ids, the same with quotes, backslashes, control bytes and bytes
 *     that are not UTF-8 mixed in, and the host name likewise;
 *   - the de-duplicated list holds each id once, in first-seen order,
 *     with the largest backtrack of its spellings.
 */
#include <apr_strings.h>

#include "ps_fuzz.h"
#include "ps_info.h"
#include "ps_path.h"
#include "ps_escape.h"
#include "ps_json_check.h"

static const apr_int64_t ps_fz_max[] = { 0, 1, 5, 400 };

/* Naive %{arg:name}: the first '&'-separated piece "name" or "name=v". */
static const char *ps_fz_arg_ref(const char *args, const char *name,
                                 size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *a = args;

    while (*a) {
        size_t len = strcspn(a, "&");

        if (len == nlen && !strncmp(a, name, nlen)) {
            *vlen = 0;
            return a + len;
        }
        if (len > nlen && !strncmp(a, name, nlen) && a[nlen] == '=') {
            *vlen = len - nlen - 1;
            return a + nlen + 1;
        }
        a += len + (a[len] == '&');
    }
    *vlen = 0;
    return NULL;
}

static void ps_fz_check_arg(apr_pool_t *p, const char *args, const char *name,
                            const char *got)
{
    size_t rlen;
    const char *raw = ps_fz_arg_ref(args, name, &rlen);
    apr_size_t dlen;
    char *dec;

    if (!raw) {
        ps_fuzz_assert(*got == '\0');
        return;
    }
    dec = ps_path_unescape(p, raw, rlen, &dlen);
    if (strlen(dec) == dlen)
        ps_fuzz_assert(strcmp(got, dec) == 0);
    else     /* a decoded NUL: the raw value */
        ps_fuzz_assert(strlen(got) == rlen && !memcmp(got, raw, rlen));
}

static void ps_fz_check_select(const apr_array_header_t *a, apr_int64_t max)
{
    const char *prefix = (const char *)1;
    apr_size_t plen = 7;
    ps_stats_sel_e sel = ps_path_stats_select(a, max, &prefix, &plen);
    int i;

    if (!a->nelts) {
        ps_fuzz_assert(sel == PS_STATS_SUMMARY && !prefix && !plen);
        return;
    }
    for (i = 0; i < a->nelts; i++) {
        const ps_path_channel_t *ch = &APR_ARRAY_IDX(a, i, ps_path_channel_t);
        const char *star = memchr(ch->id, '*', ch->len);

        if (star || (ch->len == 3 && !memcmp(ch->id, "ALL", 3))) {
            ps_fuzz_assert(sel == PS_STATS_ALL);
            ps_fuzz_assert(star ? prefix == ch->id
                                  && plen == (apr_size_t)(star - ch->id)
                                : prefix == NULL && plen == 0);
            return;
        }
        if (max > 0 && (apr_int64_t)ch->len > max) {
            ps_fuzz_assert(sel == PS_STATS_TOO_LONG && !prefix && !plen);
            return;
        }
    }
    ps_fuzz_assert(sel == PS_STATS_LIST && !prefix && !plen);
}

/* Every id against every prefix the list yields (the channels a store
 * would hold are exactly such ids). */
static void ps_fz_check_prefixes(const apr_array_header_t *a)
{
    int i, j;

    for (i = 0; i < a->nelts && i < 16; i++) {
        const ps_path_channel_t *pre = &APR_ARRAY_IDX(a, i, ps_path_channel_t);
        const char *star = memchr(pre->id, '*', pre->len);
        apr_size_t plen = star ? (apr_size_t)(star - pre->id) : pre->len;

        for (j = 0; j < a->nelts && j < 16; j++) {
            const ps_path_channel_t *ch = &APR_ARRAY_IDX(a, j,
                                                         ps_path_channel_t);
            int want = ch->len >= plen && !memcmp(ch->id, pre->id, plen);

            ps_fuzz_assert(ps_path_has_prefix(ch->id, ch->len, pre->id, plen)
                           == want);
        }
        ps_fuzz_assert(ps_path_has_prefix(pre->id, pre->len, NULL, 0));
    }
}

static void ps_fz_json(const char *doc, apr_size_t len)
{
    size_t at = 0;

    if (!ps_json_valid(doc, len, &at)) {
        fprintf(stderr, "invalid JSON at %zu: %.*s\n", at, (int)len, doc);
        ps_fuzz_assert(!"JSON document parses");
    }
}

/* The input's id i with odd bytes mixed in (by i): a quote, a backslash,
 * a control byte, a byte that is not UTF-8, a cut UTF-8 sequence. */
static const char *ps_fz_oddify(apr_pool_t *p, const ps_path_channel_t *ch,
                                int i, apr_size_t *len)
{
    static const char *const odd[] = { "\"", "\\", "\x01", "\xff", "\xe2\x82",
                                       "\n", "\x7f", "\xed\xa0\x80", "</" };
    const char *o = odd[i % (int)(sizeof(odd) / sizeof(odd[0]))];
    char *s;

    /* by length: the id may hold NULs */
    *len = strlen(o) * 2 + ch->len;
    s = apr_palloc(p, *len);
    memcpy(s, o, strlen(o));
    memcpy(s + strlen(o), ch->id, ch->len);
    memcpy(s + strlen(o) + ch->len, o, strlen(o));
    return s;
}

static void ps_fz_documents(apr_pool_t *p, const apr_array_header_t *a)
{
    int n = a->nelts < 8 ? a->nelts : 8, i, f, odd;
    ps_chinfo_t *items = apr_pcalloc(p, (n + 1) * sizeof(*items));
    ps_info_header_t h = { "host", 1700000000, 3, 1, 60 };
    ps_info_summary_t sum = { "h\"o\\st\xff", 1700000000, 1, 2, 3, 4, 5, 6,
                              7, 8, 9 };
    ps_info_worker_t w[2] = { { 1, 2, 3 }, { 4, 5, 6 } };
    apr_size_t len;
    char *doc;

    for (odd = 0; odd < 2; odd++) {
        for (i = 0; i < n; i++) {
            const ps_path_channel_t *ch = &APR_ARRAY_IDX(a, i,
                                                         ps_path_channel_t);
            items[i].id = odd ? ps_fz_oddify(p, ch, i, &items[i].id_len)
                              : ch->id;
            if (!odd)
                items[i].id_len = ch->len;
            items[i].published_messages = (apr_uint64_t)ch->backtrack;
            items[i].subscribers = APR_UINT64_MAX - (apr_uint64_t)i;
        }
        h.hostname = odd ? "h\"o\\s\x01t\xc3" : "host";
        for (f = PS_FMT_JSON; f <= PS_FMT_XYAML; f++) {
            int json = f == PS_FMT_JSON || f == PS_FMT_XJSON;
            doc = ps_info_group(p, (ps_fmt_e)f, &h, items, n, &len);
            ps_fuzz_assert(doc != NULL && strlen(doc) == len);
            if (json)
                ps_fz_json(doc, len);
            if (n) {
                doc = ps_info_single(p, (ps_fmt_e)f, &items[0], &len);
                ps_fuzz_assert(doc != NULL && strlen(doc) == len);
                if (json)
                    ps_fz_json(doc, len);
            }
            doc = ps_info_summarized(p, (ps_fmt_e)f, &sum, w, 2, &len);
            ps_fuzz_assert(doc != NULL && strlen(doc) == len);
            if (json)
                ps_fz_json(doc, len);
        }
        /* Prometheus: one line per channel and metric, labels escaped */
        doc = ps_info_prometheus(p, items, n, &len);
        ps_fuzz_assert(doc != NULL && strlen(doc) == len);
        {
            apr_size_t lines = 0, k;
            for (k = 0; k < len; k++)
                lines += doc[k] == '\n';
            ps_fuzz_assert(lines == 3 * (apr_size_t)(n + 2));
        }
        /* the escape of every id parses as a JSON string */
        for (i = 0; i < n; i++) {
            apr_size_t elen;
            char *e = ps_esc(p, PS_ESC_JSON, items[i].id, items[i].id_len,
                             &elen);
            ps_fz_json(apr_pstrcat(p, "\"", e, "\"", NULL), elen + 2);
        }
    }
}

/* ps_path_dedupe against a naive quadratic scan. */
static void ps_fz_check_dedupe(apr_pool_t *p, const apr_array_header_t *a)
{
    apr_array_header_t *d = ps_path_dedupe(p, (apr_array_header_t *)a);
    int i, j, k = 0;

    for (i = 0; i < a->nelts; i++) {
        const ps_path_channel_t *c = &APR_ARRAY_IDX(a, i, ps_path_channel_t);
        int first = 1, bt = c->backtrack;
        const ps_path_channel_t *got;

        for (j = 0; j < a->nelts; j++) {
            const ps_path_channel_t *o = &APR_ARRAY_IDX(a, j,
                                                        ps_path_channel_t);
            if (o->len == c->len && !memcmp(o->id, c->id, c->len)) {
                if (j < i)
                    first = 0;
                if (o->backtrack > bt)
                    bt = o->backtrack;
            }
        }
        if (!first)
            continue;
        ps_fuzz_assert(k < d->nelts);
        got = &APR_ARRAY_IDX(d, k, ps_path_channel_t);
        ps_fuzz_assert(got->len == c->len && !memcmp(got->id, c->id, c->len));
        ps_fuzz_assert(got->backtrack == bt);
        k++;
    }
    ps_fuzz_assert(k == d->nelts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = ps_fuzz_pool();
    char *args = ps_fuzz_str((const char *)data, size);   /* r->args */
    const char *id = ps_path_query_arg(p, args, "id");
    apr_array_header_t *a;
    apr_size_t len;
    char *path;
    size_t i;

    ps_fz_check_arg(p, args, "id", id);
    ps_fz_check_arg(p, args, "format", ps_path_query_arg(p, args, "format"));
    /* the expression result is unescaped once more, as for any path */
    path = ps_path_unescape(p, id, strlen(id), &len);
    a = ps_path_parse(p, path, len);
    for (i = 0; i < sizeof(ps_fz_max) / sizeof(ps_fz_max[0]); i++)
        ps_fz_check_select(a, ps_fz_max[i]);
    ps_fz_check_prefixes(a);
    ps_fz_documents(p, a);
    ps_fz_check_dedupe(p, a);
    free(args);
    apr_pool_destroy(p);
    return 0;
}
