/* The uplink's publish ceilings (shape.c): exact sliding windows, not a token bucket. */
#include "check.h"
#include "shape.h"

#include <stdlib.h>

#define S 1000000ULL
#define H SHAPE_HOLD_US /* 1 s and the margin */

/* Publishes as fast as the shaper allows from t0 for `span` us, asking at every `step` us;
 * returns the largest number of publishes any 1 s window [a, a + 1 s) held. */
static unsigned max_in_any_window(struct shape *sh, uint64_t t0, uint64_t span, uint64_t step,
                                  uint64_t bytes, unsigned *ret_total)
{
    static uint64_t times[200000];
    unsigned n = 0;
    for (uint64_t t = t0; t < t0 + span && n < 200000; t += step)
        while (n < 200000 && shape_wait_us(sh, t, bytes) == 0) {
            shape_record(sh, t, bytes);
            times[n++] = t;
        }
    unsigned worst = 0;
    for (unsigned i = 0, j = 0; i < n; i++) {
        while (times[i] - times[j] >= S)
            j++;
        if (i - j + 1 > worst)
            worst = i - j + 1;
    }
    *ret_total = n;
    return worst;
}

int main(void)
{
    struct shape sh;
    unsigned total;

    /* No ceiling: everything passes, nothing kept. */
    CHECK_EQ_INT(shape_init(&sh, 0, 0), 0);
    CHECK(!shape_active(&sh));
    CHECK_EQ_INT(shape_wait_us(&sh, 5, 1 << 20), 0);
    shape_record(&sh, 5, 1);
    CHECK_EQ_INT(shape_in_window(&sh, 5), 0);
    shape_free(&sh);

    /* 100/s: the 101st publish of a burst waits until the first is 1 s (and the margin)
     * old, exactly. */
    CHECK_EQ_INT(shape_init(&sh, 100, 0), 0);
    for (int i = 0; i < 100; i++) {
        CHECK_EQ_INT(shape_wait_us(&sh, 10 * S + (uint64_t)i, 10), 0);
        shape_record(&sh, 10 * S + (uint64_t)i, 10);
    }
    CHECK_EQ_INT(shape_wait_us(&sh, 10 * S + 100, 10), H - 100);
    CHECK_EQ_INT(shape_wait_us(&sh, 10 * S + H - 1, 10), 1);
    CHECK_EQ_INT(shape_wait_us(&sh, 10 * S + H, 10), 0); /* the first left the window */
    shape_record(&sh, 10 * S + H, 10);
    CHECK_EQ_INT(shape_wait_us(&sh, 10 * S + H, 10), 1); /* the second leaves 1 us later */
    CHECK_EQ_INT(shape_in_window(&sh, 10 * S + H), 100);
    shape_free(&sh);

    /* Driven greedily for 20 s at every 137 us: no window holds more than 100, and the
     * throughput is the ceiling (no token-bucket burst of rate + burst in one window). */
    CHECK_EQ_INT(shape_init(&sh, 100, 0), 0);
    CHECK_EQ_INT(max_in_any_window(&sh, 0, 20 * S, 137, 1, &total), 100);
    CHECK(total >= 1900 && total <= 2000); /* 100 per 1.05 s */
    shape_free(&sh);
    CHECK_EQ_INT(shape_init(&sh, 7, 0), 0);
    CHECK_EQ_INT(max_in_any_window(&sh, 3 * S + 17, 10 * S, 999, 1, &total), 7);
    CHECK(total >= 66 && total <= 70);
    shape_free(&sh);

    /* Bytes: 1000 B/s. 400 + 400 pass, 400 more waits for the first to leave; a publish
     * larger than the ceiling leaves alone, when the window is empty. */
    CHECK_EQ_INT(shape_init(&sh, 0, 1000), 0);
    CHECK_EQ_INT(shape_wait_us(&sh, 0, 400), 0);
    shape_record(&sh, 0, 400);
    CHECK_EQ_INT(shape_wait_us(&sh, 100, 400), 0);
    shape_record(&sh, 100, 400);
    CHECK_EQ_INT(shape_wait_us(&sh, 200, 400), H - 200);
    CHECK_EQ_INT(shape_wait_us(&sh, 200, 200), 0);
    CHECK_EQ_INT(shape_wait_us(&sh, 200, 5000), H + 100 - 200); /* both must leave */
    CHECK_EQ_INT(shape_wait_us(&sh, H + 100, 5000), 0);
    shape_free(&sh);

    /* Both ceilings: the stricter one decides. */
    CHECK_EQ_INT(shape_init(&sh, 3, 100), 0);
    shape_record(&sh, 0, 10);
    shape_record(&sh, 1, 10);
    CHECK_EQ_INT(shape_wait_us(&sh, 2, 10), 0);
    CHECK_EQ_INT(shape_wait_us(&sh, 2, 90), H - 2); /* bytes: the first must leave */
    shape_record(&sh, 2, 10);
    CHECK_EQ_INT(shape_wait_us(&sh, 3, 1), H - 3); /* count: 3 in the window */
    shape_free(&sh);

    /* The meter: messages per second over the last 10 s. */
    struct shape_meter m = {0};
    CHECK(shape_meter_rate(&m, 0) == 0);
    shape_meter_add(&m, 100 * S, 50);
    CHECK(shape_meter_rate(&m, 100 * S + 10) == 50); /* one second so far */
    for (uint64_t s = 101; s < 120; s++)
        shape_meter_add(&m, s * S + 5, 20);
    CHECK(shape_meter_rate(&m, 119 * S + 9) == 20); /* the last 10 s: 110..119 */
    CHECK(shape_meter_rate(&m, 125 * S) == 8);      /* 116..119 counted, 10 s span */
    CHECK(shape_meter_rate(&m, 200 * S) == 0);
    return check_finish();
}
