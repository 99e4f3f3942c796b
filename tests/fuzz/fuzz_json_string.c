/*
 * tests/fuzz/fuzz_json_string.c: fuzz target for the JSON string encoder (common/json_out.h,
 * API.md §1.4). For any input bytes the output must be one quoted JSON string that jansson
 * decodes to the input with every byte outside a valid UTF-8 sequence replaced by U+FFFD
 * (exactly the input when it is valid UTF-8), and must contain no raw < > &, no raw control
 * byte and no raw U+2028/U+2029. The escaping is also compared byte for byte with a reference
 * encoder written from the contract's table. Built by tests/fuzz/CMakeLists.txt (regression)
 * and run.sh (libFuzzer).
 */
#include "common/json_out.h"
#include "common/textutil.h"
#include "tests/fuzz/fuzz_check.h"

#include "tests/fuzz/jansson_ref.h"

#include <string.h>

/* The contract's escaping, written independently of json_out.c. */
static void ref_encode(const unsigned char *s, size_t len, jbuf *out)
{
    static const char hex[] = "0123456789abcdef";
    jbuf_putc(out, '"');
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t w = ref_utf8_width(s + i, len - i, &cp);
        if (w == 0) {
            jbuf_puts(out, "\\ufffd");
            i++;
            continue;
        }
        switch (cp) {
        case '"':
            jbuf_puts(out, "\\\"");
            break;
        case '\\':
            jbuf_puts(out, "\\\\");
            break;
        case '\b':
            jbuf_puts(out, "\\b");
            break;
        case '\f':
            jbuf_puts(out, "\\f");
            break;
        case '\n':
            jbuf_puts(out, "\\n");
            break;
        case '\r':
            jbuf_puts(out, "\\r");
            break;
        case '\t':
            jbuf_puts(out, "\\t");
            break;
        case '<':
        case '>':
        case '&':
        case 0x2028:
        case 0x2029: {
            char esc[7] = {
                '\\',         'u', hex[cp >> 12], hex[(cp >> 8) & 15], hex[(cp >> 4) & 15],
                hex[cp & 15], 0};
            jbuf_puts(out, esc);
            break;
        }
        default:
            if (cp < 0x20) {
                char esc[7] = {'\\', 'u', '0', '0', hex[cp >> 4], hex[cp & 15], 0};
                jbuf_puts(out, esc);
            } else {
                jbuf_append(out, s + i, w);
            }
        }
        i += w;
    }
    jbuf_putc(out, '"');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    jbuf out, ref, want;
    jbuf_init(&out);
    jbuf_init(&ref);
    jbuf_init(&want);
    jbuf_putc(&out, 'x'); /* appending must keep what is already there */
    jout_string(&out, (const char *)data, size);
    FUZZ_CHECK(out.data[0] == 'x', "jout_string overwrote the buffer");
    const unsigned char *o = (const unsigned char *)out.data + 1;
    size_t olen = out.len - 1;

    FUZZ_CHECK(olen >= 2 && o[0] == '"' && o[olen - 1] == '"', "not a quoted string");
    for (size_t i = 0; i < olen; i++) {
        FUZZ_CHECK(o[i] >= 0x20, "raw control byte 0x%02x at %zu", o[i], i);
        FUZZ_CHECK(o[i] != '<' && o[i] != '>' && o[i] != '&', "raw '%c' at %zu", o[i], i);
        FUZZ_CHECK(!(i + 2 < olen && o[i] == 0xE2 && o[i + 1] == 0x80 &&
                     (o[i + 2] == 0xA8 || o[i + 2] == 0xA9)),
                   "raw U+2028/U+2029 at %zu", i);
    }
    FUZZ_CHECK(ref_utf8_valid(o, olen), "output is not valid UTF-8");

    ref_encode(data, size, &ref);
    FUZZ_CHECK(ref.len == olen && memcmp(ref.data, o, olen) == 0,
               "escaping differs from the contract's table (got %zu bytes, want %zu)", olen,
               ref.len);

    /* What the string must decode to: invalid bytes become U+FFFD. */
    for (size_t i = 0; i < size;) {
        uint32_t cp;
        size_t w = ref_utf8_width(data + i, size - i, &cp);
        if (w == 0) {
            jbuf_puts(&want, "\xEF\xBF\xBD");
            i++;
        } else {
            jbuf_append(&want, data + i, w);
            i += w;
        }
    }
    char *dec = NULL, err[160];
    size_t dec_len = 0;
    FUZZ_CHECK(jref_decode_string((const char *)o, olen, &dec, &dec_len, err) == 0,
               "jansson rejects the output: %s", err);
    FUZZ_CHECK(dec_len == want.len && memcmp(dec, want.data ? want.data : "", want.len) == 0,
               "decodes to %zu bytes, want %zu", dec_len, want.len);
    if (utf8_valid((const char *)data, size))
        FUZZ_CHECK(want.len == size && memcmp(want.data ? want.data : "", data, size) == 0,
                   "valid UTF-8 input did not survive");
    free(dec);
    jbuf_free(&out);
    jbuf_free(&ref);
    jbuf_free(&want);
    return 0;
}
