/* test_store_model.c - the store against a simple model (see
 * test/fuzz/ps_store_model.h): pseudo-random request sequences over a few
 * channel ids with duplicates, every limit/events setting in turn, checked
 * after every step.  The same model runs for millions of steps as the
 * libFuzzer target test/fuzz/fuzz_store.c (make fuzz). */

#include "ps_test.h"
#include "../fuzz/ps_store_model.h"

#define PSM_UNIT_STEPS 48000            /* in all, over the configurations */
#define PSM_UNIT_CFGS  8

static unsigned psm_rand(unsigned *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static void test_model(void **state)
{
    apr_pool_t *p = *state;
    unsigned long long total = 0;
    int c;

    for (c = 0; c < PSM_UNIT_CFGS; c++) {
        psm_t *m = calloc(1, sizeof(*m));
        unsigned x = 0x9e3779b9u * (unsigned)(c + 1);
        unsigned char buf[4096];
        const char *e = NULL;
        size_t i;

        assert_non_null(m);
        /* the configurations: limits, ttl, inactivity, events on/off */
        assert_int_equal(psm_init(m, p, (unsigned char)(psm_rand(&x) & 0xdf)
                                         | (c & 1 ? 0x20 : 0)), 0);
        while (!e && m->steps < PSM_UNIT_STEPS / PSM_UNIT_CFGS) {
            const unsigned char *in = buf;
            size_t left = sizeof(buf);
            for (i = 0; i < sizeof(buf); i++)
                buf[i] = (unsigned char)psm_rand(&x);
            while (!e && left && m->steps < PSM_UNIT_STEPS / PSM_UNIT_CFGS)
                e = psm_step(m, &in, &left);
        }
        if (!e)
            e = psm_finish(m);
        if (e)
            fail_msg("configuration %d, step %llu: %s", c, m->steps, e);
        total += m->steps;
        psm_destroy(m);
        free(m);
    }
    print_message("store model: %llu steps clean\n", total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PS_TEST(test_model),
    };

    PS_TEST_RUN(tests);
}
