/* ota_jobdoc: job documents parse with their defaults, every bad key or value is refused
 * with its name and leaves nothing behind; chunk replies are checked against their own
 * SHA-256, the offset asked for, the length asked for and the image's size; the chunk
 * example printed in docs/protocol.md is exactly what the encoder produces. */
#include "check.h"
#include "ota_jobdoc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SHA "\"abababababababababababababababababababababababababababababababab\""

static int parse(const char *text, struct ota_jobdoc *d, char *err, size_t cap)
{
    err[0] = '\0';
    return ota_jobdoc_parse(text, strlen(text), d, err, cap);
}

int main(void)
{
    struct ota_jobdoc d;
    char err[256];

    /* a full document */
    CHECK_EQ_INT(
        parse("{\"image\": {\"sha256\": " SHA ", \"size\": 4096, \"version\": "
              "\"2.0.0+7\", \"class\": \"sim\", \"digest\": " SHA "},"
              " \"campaign\": {\"waves\": [1, \"100%\"], \"recovery\": true},"
              " \"transfer\": {\"block_size\": 1024, \"timeout_ms\": 250, \"retries\": 3}}",
              &d, err, sizeof(err)),
        0);
    CHECK(d.sha256[0] == 0xab && d.has_digest && d.digest[31] == 0xab && d.size == 4096);
    CHECK(d.has_version && d.version.major == 2 && d.version.minor == 0 &&
          d.version.revision == 0 && d.version.build == 7);
    CHECK(strcmp(d.class_name, "sim") == 0 && d.recovery);
    CHECK(strcmp(d.spec, "{\"waves\":[1,\"100%\"],\"recovery\":true}") == 0);
    CHECK(d.block_size == 1024 && d.timeout_ms == 250 && d.retries == 3);
    /* the least: defaults */
    CHECK_EQ_INT(parse("{\"image\": {\"sha256\": " SHA ", \"size\": 1}, \"campaign\": {}}", &d, err,
                       sizeof(err)),
                 0);
    CHECK(!d.has_digest && !d.has_version && d.class_name[0] == '\0' && !d.recovery);
    CHECK(d.block_size == OTA_JOB_BLOCK_DEF && d.timeout_ms == OTA_JOB_TIMEOUT_DEF &&
          d.retries == OTA_JOB_RETRIES_DEF);

    static const struct {
        const char *doc, *names;
    } bad[] = {
        {"", "bytes"},
        {"[1]", "not a JSON object"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": 1}, \"campaign\": {}} x", "not JSON"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": 1}", "ends early"},
        {"{\"campaign\": {}}", "'image' is required"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": 1}}", "'campaign' is required"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": 1}, \"campaign\": {}, \"x\": 1}", "'x'"},
        {"{\"image\": {\"size\": 1}, \"campaign\": {}}", "image.sha256"},
        {"{\"image\": {\"sha256\": \"ab\", \"size\": 1}, \"campaign\": {}}", "image.sha256"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": 0}, \"campaign\": {}}", "image.size"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": 16777217}, \"campaign\": {}}", "image.size"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": \"1\"}, \"campaign\": {}}", "image.size"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": 1, \"version\": \"2.0\"}, \"campaign\": {}}",
         "image.version"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": 1, \"version\": \"256.0.0\"}, \"campaign\": "
         "{}}",
         "image.version"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": 1, \"class\": \"a/b\"}, \"campaign\": {}}",
         "image.class"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": 1, \"colour\": 1}, \"campaign\": {}}",
         "'colour'"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": 1}, \"campaign\": {\"image\": \"ab\"}}",
         "campaign.image"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": 1}, \"campaign\": {\"recovery\": 1}}",
         "campaign.recovery"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": 1}, \"campaign\": []}", "'campaign'"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": 1}, \"campaign\": {}, \"transfer\": "
         "{\"block_size\": 63}}",
         "transfer.block_size"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": 1}, \"campaign\": {}, \"transfer\": "
         "{\"timeout_ms\": 99}}",
         "transfer.timeout_ms"},
        {"{\"image\": {\"sha256\": " SHA ", \"size\": 1}, \"campaign\": {}, \"transfer\": "
         "{\"window\": 2}}",
         "'window'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = parse(bad[i].doc, &d, err, sizeof(err));
        if (r == 0 || strstr(err, bad[i].names) == NULL)
            fprintf(stderr, "  bad[%zu]: %d '%s'\n", i, r, err);
        CHECK(r < 0 && strstr(err, bad[i].names) != NULL);
        CHECK(d.size == 0 && d.spec[0] == '\0');
    }
    struct image_version v;
    CHECK_EQ_INT(ota_version_parse("1.2.3", &v), 0);
    CHECK(v.major == 1 && v.minor == 2 && v.revision == 3 && v.build == 0);
    CHECK_EQ_INT(ota_version_parse("1.2.65535+4294967295", &v), 0);
    CHECK(v.revision == 65535 && v.build == 4294967295u);
    static const char *const badv[] = {"1.2",    "1.2.3+",    "1.2.3.4",
                                       "a.b.c",  "1.2.65536", "1.2.3+4294967296",
                                       "-1.2.3", "1.2.3 ",    ""};
    for (size_t i = 0; i < sizeof(badv) / sizeof(badv[0]); i++)
        CHECK(ota_version_parse(badv[i], &v) != 0);

    /* chunk replies: the documented example */
    uint8_t want[64], buf[OTA_JOB_CHUNK_HDR + 2048], data[2048];
    const char *doc = check_read_source("docs/protocol.md");
    CHECK(doc != NULL);
    long n = doc != NULL ? check_doc_example(doc, "job-chunk", want, sizeof(want)) : -1;
    static const uint8_t four[4] = {1, 2, 3, 4};
    size_t len = ota_job_chunk_encode(1024, four, 4, buf, sizeof(buf));
    CHECK(n == (long)len && len == OTA_JOB_CHUNK_HDR + 4 && memcmp(buf, want, len) == 0);
    struct ota_job_chunk c;
    CHECK_EQ_INT(ota_job_chunk_parse(buf, len, &c, err, sizeof(err)), 0);
    CHECK(c.offset == 1024 && c.len == 4 && memcmp(c.data, four, 4) == 0);
    /* checked against the request and the size */
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7);
    len = ota_job_chunk_encode(2048, data, 1024, buf, sizeof(buf));
    CHECK_EQ_INT(ota_job_chunk_parse(buf, len, &c, err, sizeof(err)), 0);
    CHECK_EQ_INT(ota_job_chunk_check(&c, 2048, 1024, 8192, err, sizeof(err)), 0);
    CHECK_EQ_INT(ota_job_chunk_check(&c, 1024, 1024, 8192, err, sizeof(err)), -ERANGE);
    CHECK(strstr(err, "offset 1024 was asked for") != NULL);
    CHECK_EQ_INT(ota_job_chunk_check(&c, 2048, 512, 8192, err, sizeof(err)), -ERANGE);
    CHECK_EQ_INT(ota_job_chunk_check(&c, 2048, 1024, 3000, err, sizeof(err)), -ERANGE);
    CHECK(strstr(err, "beyond the image") != NULL);
    CHECK_EQ_INT(ota_job_chunk_check(&c, 2048, 1024, 3072, err, sizeof(err)), 0); /* the last */
    /* the last chunk is shorter: exactly what is left */
    len = ota_job_chunk_encode(3000, data, 72, buf, sizeof(buf));
    CHECK_EQ_INT(ota_job_chunk_parse(buf, len, &c, err, sizeof(err)), 0);
    CHECK_EQ_INT(ota_job_chunk_check(&c, 3000, 1024, 3072, err, sizeof(err)), 0);
    CHECK_EQ_INT(ota_job_chunk_check(&c, 3000, 1024, 3100, err, sizeof(err)), -ERANGE);
    /* a changed byte, a wrong length field, a short header, another magic */
    len = ota_job_chunk_encode(0, data, 100, buf, sizeof(buf));
    buf[OTA_JOB_CHUNK_HDR + 50] ^= 1;
    CHECK_EQ_INT(ota_job_chunk_parse(buf, len, &c, err, sizeof(err)), -EBADMSG);
    CHECK(strstr(err, "SHA-256") != NULL && c.data == NULL);
    buf[OTA_JOB_CHUNK_HDR + 50] ^= 1;
    CHECK_EQ_INT(ota_job_chunk_parse(buf, len - 1, &c, err, sizeof(err)), -EINVAL);
    CHECK_EQ_INT(ota_job_chunk_parse(buf, OTA_JOB_CHUNK_HDR - 1, &c, err, sizeof(err)), -EINVAL);
    buf[0] = 'X';
    CHECK_EQ_INT(ota_job_chunk_parse(buf, len, &c, err, sizeof(err)), -EINVAL);
    CHECK(ota_job_chunk_encode(0, data, 100, buf, OTA_JOB_CHUNK_HDR + 99) == 0);
    /* the request */
    char req[128];
    CHECK(ota_job_get_json(4096, 1024, "gw-1", req, sizeof(req)) > 0);
    CHECK(strcmp(req, "{\"offset\":4096,\"length\":1024,\"gateway\":\"gw-1\"}") == 0);
    CHECK(ota_job_get_json(4096, 1024, "gw-1", req, 10) == 0);
    return check_finish();
}
