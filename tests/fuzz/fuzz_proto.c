/* libFuzzer target: arbitrary bytes through proto_decode (proto/codec.h).
 *
 * Checked: no crash or sanitizer report; a frame that decodes re-encodes to
 * bytes that decode again to the same encoding (what passed validation stays
 * valid), and a refused frame always says why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct proto_limits lim = {.vocab = 512, .max_prompt = 4096, .max_gamma = 16};
    char err[256] = "";
    proto_msg *m = proto_decode(data, size, &lim, err, sizeof err);
    if (!m) {
        if (!err[0])
            abort();
        return 0;
    }
    size_t len1, len2;
    uint8_t *b1 = proto_encode(m, &len1);
    proto_msg *m2 = b1 ? proto_decode(b1, len1, &lim, err, sizeof err) : NULL;
    if (!m2)
        abort();
    uint8_t *b2 = proto_encode(m2, &len2);
    if (!b2 || len1 != len2 || memcmp(b1, b2, len1))
        abort();
    free(b1);
    free(b2);
    proto_free(m);
    proto_free(m2);
    return 0;
}
