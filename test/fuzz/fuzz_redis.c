/* fuzz_redis.c - what mod_pushstream reads from Redis and its address
 * (ps_redis_rec.c, ps_redis_url.c).
 *
 * Input: the bytes of a pub/sub announcement or stored message, and the
 * same bytes as a PushStreamRedis address.  Invariants:
 *   - a parsed message's event id, event type and text lie inside the
 *     input, back to back, ending at its end; ids are >= 1;
 *   - an announcement is "<epoch> D\n<text>" or "<epoch> <0|1> <message>";
 *   - a parsed address names a host xor an absolute unix path, a port
 *     1..65535 and a db >= 0.
 */
#include "ps_fuzz.h"
#include "ps_redis_rec.h"
#include "ps_redis_url.h"

static void ps_fz_rec(const char *s, size_t n, const ps_redis_rec_t *r)
{
    ps_fuzz_assert(r->id >= 1 && r->time >= 0 && r->tag >= 0);
    ps_fuzz_assert(r->event_id >= s && r->event_id + r->event_id_len
                   == r->event_type);
    ps_fuzz_assert(r->event_type + r->event_type_len == r->text);
    ps_fuzz_assert(r->text + r->text_len == s + n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = ps_fuzz_dup((const char *)data, size);
    apr_pool_t *p = ps_fuzz_pool();
    ps_redis_rec_t r;
    ps_redis_url_t u;
    char *z;

    if (ps_redis_rec_parse(s, size, &r) == 0) {
        ps_fz_rec(s, size, &r);
    }
    if (ps_redis_announce_parse(s, size, &r) == 0) {
        ps_fuzz_assert(r.epoch == s && r.epoch_len > 0
                       && s[r.epoch_len] == ' ');
        if (r.deleted) {
            ps_fuzz_assert(r.text + r.text_len == s + size);
        }
        else {
            ps_fz_rec(s, size, &r);
        }
    }
    z = malloc(size + 1);
    ps_fuzz_assert(z != NULL);
    memcpy(z, data, size);
    z[size] = '\0';
    if (!ps_redis_url_parse(p, z, &u)) {
        ps_fuzz_assert(!u.host != !u.path);
        ps_fuzz_assert(!u.path || u.path[0] == '/');
        ps_fuzz_assert(u.port >= 1 && u.port <= 65535 && u.db >= 0);
        ps_fuzz_assert(!u.host || u.host[0] != '\0');
    }
    free(z);
    free(s);
    apr_pool_destroy(p);
    return 0;
}
