/* The marker scanner of fleetgw-serial-link: text lines, the marker found in any split,
 * false starts, bytes after the marker handed back, link-mode scanning without lines. */
#include <string.h>

#include "check.h"
#include "serial_frame.h"

struct lines {
    char text[1024];
    size_t count;
};

static void collect(void *ctx, const char *line, size_t len)
{
    struct lines *l = ctx;
    size_t have = strlen(l->text);
    CHECK(have + len + 2 < sizeof(l->text));
    memcpy(l->text + have, line, len);
    l->text[have + len] = '|';
    l->text[have + len + 1] = '\0';
    l->count++;
}

/* Feeds s in chunks of `step` bytes; returns the offset just after the first marker
 * (0 if none). */
static size_t feed_chunks(const char *s, size_t step, struct lines *out)
{
    struct serial_frame f;
    size_t len = strlen(s), off = 0;
    serial_frame_init(&f);
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        bool found;
        size_t used = serial_frame_feed(&f, (const uint8_t *)s + off, n, &found, collect, out);
        CHECK(used <= n);
        off += used;
        if (found)
            return off;
        CHECK(used == n);
    }
    return 0;
}

static void test_marker_any_split(void)
{
    static const char in[] = "fleet-agent 0.1.0 starting\r\nagent: link mode\r\n"
                             "LINK:BEGIN\r\n\x16\x03\x01";
    size_t want = strlen(in) - 3;
    for (size_t step = 1; step <= sizeof(in); step++) {
        struct lines l;
        memset(&l, 0, sizeof(l));
        CHECK(feed_chunks(in, step, &l) == want);
        CHECK(strcmp(l.text, "fleet-agent 0.1.0 starting|agent: link mode|") == 0);
        CHECK(l.count == 2);
    }
}

static void test_false_starts(void)
{
    struct lines l;
    memset(&l, 0, sizeof(l));
    /* Prefixes of the marker that break off are text, not lost. */
    CHECK(feed_chunks("LINK:BEG\r\nLLINK:BEGIN\nLINK:BEGIN\r\r\nxLINK:BEGIN\r\n", 1, &l) ==
          strlen("LINK:BEG\r\nLLINK:BEGIN\nLINK:BEGIN\r\r\nxLINK:BEGIN\r\n"));
    CHECK(strcmp(l.text, "LINK:BEG|LLINK:BEGIN|LINK:BEGIN|x|") == 0);
    CHECK(l.count == 4);
    memset(&l, 0, sizeof(l));
    CHECK(feed_chunks("no marker here\nLINK:BEGIN", 4, &l) == 0);
    CHECK(strcmp(l.text, "no marker here|") == 0);
}

static void test_long_and_binary_lines(void)
{
    char in[400];
    struct lines l;
    memset(in, 'a', sizeof(in));
    in[10] = '\x01';
    in[sizeof(in) - 2] = '\n';
    in[sizeof(in) - 1] = '\0';
    memset(&l, 0, sizeof(l));
    CHECK(feed_chunks(in, 7, &l) == 0);
    CHECK(l.count == 3); /* 160 + 160 + 78 */
    CHECK(l.text[10] == '.');
}

static void test_link_mode_no_lines(void)
{
    struct serial_frame f;
    bool found;
    static const uint8_t tls[] = {0x17, 0x03, 0x03, 0x00, 0x05, '\n', 'L',  'I',  'N', 'K',
                                  ':',  'B',  'E',  'G',  'I',  'N',  '\r', '\n', 0x16};
    serial_frame_init(&f);
    CHECK(serial_frame_feed(&f, tls, 8, &found, NULL, NULL) == 8);
    CHECK(!found);
    CHECK(serial_frame_feed(&f, tls + 8, sizeof(tls) - 8, &found, NULL, NULL) == sizeof(tls) - 9);
    CHECK(found);
    /* The state is fresh after a marker: a second one is found again. */
    CHECK(serial_frame_feed(&f, (const uint8_t *)SERIAL_MARKER, SERIAL_MARKER_LEN, &found, NULL,
                            NULL) == SERIAL_MARKER_LEN);
    CHECK(found);
}

int main(void)
{
    test_marker_any_split();
    test_false_starts();
    test_long_and_binary_lines();
    test_link_mode_no_lines();
    return check_finish();
}
