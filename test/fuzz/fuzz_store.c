/* fuzz_store.c - the shared-memory store against a simple model (see
 * ps_store_model.h): the input is a configuration byte (limits, ttl,
 * inactivity, events channel on/off) and then requests - publish, delete,
 * info, subscribe, unsubscribe, time passing - over a few channel ids named
 * with duplicates in every spelling.  After every step the store's
 * consistency walk, its counters and every channel's figures must match
 * the model; at the end, once everything expired, all memory is free.
 *
 * The steps of every input are counted; the total is printed at exit
 * ("store model: N steps clean"), so a run states how many it checked.
 */
#include "ps_fuzz.h"
#include "ps_store_model.h"

static unsigned long long ps_fz_steps, ps_fz_inputs;

static void ps_fz_report(void)
{
    fprintf(stderr, "store model: %llu steps clean in %llu inputs\n",
            ps_fz_steps, ps_fz_inputs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int registered;
    psm_t *m;
    const unsigned char *in = data + 1;
    size_t left = size ? size - 1 : 0;
    const char *e = NULL;

    if (!registered) {
        registered = 1;
        atexit(ps_fz_report);
    }
    if (!size)
        return 0;
    m = calloc(1, sizeof(*m));
    if (!m || psm_init(m, ps_fuzz_root, data[0]) != 0)
        abort();
    while (!e && left)
        e = psm_step(m, &in, &left);
    if (!e)
        e = psm_finish(m);
    if (e) {
        fprintf(stderr, "store model diverged at step %llu: %s\n", m->steps, e);
        ps_fuzz_assert(!"store model diverged");
    }
    ps_fz_steps += m->steps;
    ps_fz_inputs++;
    psm_destroy(m);
    free(m);
    return 0;
}
