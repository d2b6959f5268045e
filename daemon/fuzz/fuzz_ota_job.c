/* Fuzz target: the cloud job path's outside bytes (ota_jobdoc.h). The first byte picks the
 * parser: even = a job document (JSON text), odd = a chunk reply, then checked against a
 * request and a size taken from the next bytes. */
#include "ota_jobdoc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ota_jobdoc doc;
    char err[256];
    if (size < 1)
        return 0;
    err[0] = '\0';
    if ((data[0] & 1) == 0) {
        if (ota_jobdoc_parse((const char *)data + 1, size - 1, &doc, err, sizeof(err)) < 0) {
            if (err[0] == '\0' || doc.size != 0 || doc.spec[0] != '\0')
                abort(); /* every refusal explains itself and leaves nothing behind */
            return 0;
        }
        if (doc.size == 0 || doc.size > IMAGE_MAX_LEN || doc.spec[0] != '{' ||
            strlen(doc.spec) > OTA_JOBDOC_SPEC_MAX || doc.block_size < OTA_JOB_BLOCK_MIN ||
            doc.block_size > OTA_JOB_BLOCK_MAX || strlen(doc.class_name) > OTA_CLASS_NAME_MAX)
            abort();
        return 0;
    }
    if (size < 13)
        return 0;
    uint32_t want_off = (uint32_t)data[1] << 8 | data[2];
    uint32_t want_len = ((uint32_t)data[3] << 8 | data[4]) + 1u;
    uint32_t img_size = ((uint32_t)data[5] << 16 | (uint32_t)data[6] << 8 | data[7]) + 1u;
    struct ota_job_chunk c;
    if (ota_job_chunk_parse(data + 8, size - 8, &c, err, sizeof(err)) < 0) {
        if (err[0] == '\0' || c.data != NULL)
            abort();
        return 0;
    }
    if (c.data != data + 8 + OTA_JOB_CHUNK_HDR || c.len != size - 8 - OTA_JOB_CHUNK_HDR)
        abort();
    err[0] = '\0';
    if (ota_job_chunk_check(&c, want_off, want_len, img_size, err, sizeof(err)) == 0) {
        /* accepted: at the offset asked for, inside the image, the length asked for */
        if (c.offset != want_off || c.offset + c.len > img_size || c.len > want_len)
            abort();
    } else if (err[0] == '\0') {
        abort();
    }
    /* round trip through the encoder */
    static uint8_t buf[OTA_JOB_CHUNK_HDR + OTA_JOB_BLOCK_MAX];
    size_t n = ota_job_chunk_encode(c.offset, c.data, c.len, buf, sizeof(buf));
    if (n != size - 8 || memcmp(buf, data + 8, n) != 0)
        abort();
    return 0;
}
