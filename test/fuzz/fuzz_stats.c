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
 *   - every document is as long as it says, for every format.
 */
#include "ps_fuzz.h"
#include "ps_info.h"
#include "ps_path.h"

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

static void ps_fz_documents(apr_pool_t *p, const apr_array_header_t *a)
{
    int n = a->nelts < 8 ? a->nelts : 8, i, f;
    ps_chinfo_t *items = apr_pcalloc(p, (n + 1) * sizeof(*items));
    ps_info_header_t h = { "host", 1700000000, 3, 1, 60 };
    apr_size_t len;
    char *doc;

    for (i = 0; i < n; i++) {
        const ps_path_channel_t *ch = &APR_ARRAY_IDX(a, i, ps_path_channel_t);
        items[i].id = ch->id;
        items[i].id_len = ch->len;
        items[i].published_messages = (apr_uint64_t)ch->backtrack;
        items[i].subscribers = APR_UINT64_MAX - (apr_uint64_t)i;
    }
    for (f = PS_FMT_JSON; f <= PS_FMT_XYAML; f++) {
        doc = ps_info_group(p, (ps_fmt_e)f, &h, items, n, &len);
        ps_fuzz_assert(doc != NULL && strlen(doc) == len);
        doc = ps_info_single(p, (ps_fmt_e)f, &items[0], &len);
        ps_fuzz_assert(doc != NULL && strlen(doc) == len);
    }
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
    free(args);
    apr_pool_destroy(p);
    return 0;
}
