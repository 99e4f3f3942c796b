/*
 * tests/fuzz/fuzz_params.c: fuzz target for the request input rules (common/params.h,
 * common/textutil.h; API.md §2.1–§2.5 and §3). The input is a raw query string. For every
 * report parameter name, query_parse + query_find is compared with an independent reference
 * decoder, and the
 * decoded value is pushed through param_int, param_window, text_trim, text_is_blank,
 * text_is_matchable and text_requested_by_valid, each checked against a reference or a
 * property. The values of `k` and `a` stand in for the X-Management-Key and Authorization
 * headers of http_auth_candidate (server/http_auth.h). Built by tests/fuzz/CMakeLists.txt
 * (regression) and run.sh (libFuzzer).
 */
#include "common/params.h"
#include "server/http_auth.h"
#include "tests/fuzz/fuzz_check.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"date_from", "date_to", "window", "breakdown", "limit",
                                    "offset",    "source",  "status", "search",    "sort",
                                    "order",     "k",       "a",      ""};

static int ref_hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes p[0..n) into out (+ = space, %XX = byte); -1 on a malformed escape. */
static long ref_decode(const unsigned char *p, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = ref_hex(p[i + 1]), lo = ref_hex(p[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            out[o++] = (unsigned char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = p[i] == '+' ? ' ' : p[i];
        }
    }
    return (long)o;
}

/* API.md §2.1 written from the contract: returns 1 and the value, or 0. */
static int ref_query_get(const unsigned char *qs, size_t len, const char *name, unsigned char *val,
                         size_t *val_len, unsigned char *scratch)
{
    size_t start = 0;
    while (start <= len) {
        size_t end = start;
        while (end < len && qs[end] != '&')
            end++;
        const unsigned char *piece = qs + start;
        size_t n = end - start;
        start = end + 1;
        if (n == 0 || memchr(piece, ';', n) != NULL)
            continue;
        const unsigned char *eq = memchr(piece, '=', n);
        size_t klen = eq ? (size_t)(eq - piece) : n;
        long kl = ref_decode(piece, klen, scratch);
        long vl = eq ? ref_decode(eq + 1, n - klen - 1, val) : 0;
        if (kl < 0 || vl < 0)
            continue;
        if ((size_t)kl == strlen(name) && memcmp(scratch, name, (size_t)kl) == 0) {
            *val_len = (size_t)vl;
            return 1;
        }
    }
    return 0;
}

static void check_trim(const unsigned char *v, size_t len)
{
    size_t s = 99, n = 99, rs, rn;
    text_trim((const char *)v, len, &s, &n);
    ref_trim(v, len, &rs, &rn);
    FUZZ_CHECK(s == rs && n == rn, "text_trim gave (%zu,%zu), reference (%zu,%zu)", s, n, rs, rn);
    FUZZ_CHECK(s + n <= len, "trim out of bounds");
    if (n > 0) {
        uint32_t cp;
        size_t w = ref_utf8_width(v + s, n, &cp);
        FUZZ_CHECK(w == 0 || !ref_is_space(cp), "trimmed value starts with U+%04X", cp);
        /* The last character: step back over continuation bytes to a valid start. */
        for (size_t back = 1; back <= 4 && back <= n; back++) {
            w = ref_utf8_width(v + s + n - back, back, &cp);
            if (w == back) {
                FUZZ_CHECK(!ref_is_space(cp), "trimmed value ends with U+%04X", cp);
                break;
            }
        }
        size_t s2, n2;
        text_trim((const char *)v + s, n, &s2, &n2);
        FUZZ_CHECK(s2 == 0 && n2 == n, "trim is not idempotent");
    }
    FUZZ_CHECK(text_is_blank((const char *)v, len) == (rn == 0), "text_is_blank disagrees");
    bool valid = ref_utf8_valid(v, len);
    FUZZ_CHECK(utf8_valid((const char *)v, len) == valid, "utf8_valid disagrees");
    FUZZ_CHECK(text_is_matchable((const char *)v, len) == (valid && memchr(v, 0, len) == NULL),
               "text_is_matchable disagrees");
}

static void check_int(const unsigned char *v, size_t len, bool present)
{
    int64_t got = 12345;
    param_int_status st = param_int((const char *)v, len, present, &got);
    size_t rs, rn;
    ref_trim(v, len, &rs, &rn);
    bool want = present && rn > 0;
    size_t i = 0;
    if (want && len > 0 && (v[0] == '+' || v[0] == '-'))
        i = 1;
    if (want && i == len)
        want = false;
    for (size_t j = i; want && j < len; j++)
        want = v[j] >= '0' && v[j] <= '9';
    long long val = 0;
    if (want) {
        /* Sign, then the digits without leading zeros; more than 19 digits cannot fit. */
        size_t z = i;
        while (z < len - 1 && v[z] == '0')
            z++;
        char tmp[32];
        if (len - z > 19) {
            want = false;
        } else {
            tmp[0] = (char)(i ? v[0] : '+');
            memcpy(tmp + 1, v + z, len - z);
            tmp[len - z + 1] = '\0';
            errno = 0;
            val = strtoll(tmp, NULL, 10);
            want = errno != ERANGE;
        }
    }
    FUZZ_CHECK((st == PARAM_INT_SET) == want, "param_int status %d, reference %d", (int)st, want);
    if (want)
        FUZZ_CHECK(got == val, "param_int value %lld, reference %lld", (long long)got, val);
    else
        FUZZ_CHECK(got == 12345, "param_int wrote *out on default");
}

static void check_window(const unsigned char *v, size_t len, bool present)
{
    const char *out = "untouched";
    int rc = param_window(present ? (const char *)v : NULL, present ? len : 0, &out);
    size_t rs = 0, rn = 0;
    if (present)
        ref_trim(v, len, &rs, &rn);
    char low[5] = {0};
    const char *want = NULL;
    if (rn == 0) {
        want = "day";
    } else if (rn <= 4) {
        for (size_t i = 0; i < rn; i++) {
            unsigned char c = v[rs + i];
            low[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        if (rn == 3 && memcmp(low, "day", 3) == 0)
            want = "day";
        if (rn == 4 && memcmp(low, "week", 4) == 0)
            want = "week";
    }
    if (want == NULL) {
        FUZZ_CHECK(rc == -1 && strcmp(out, "untouched") == 0, "param_window accepted");
    } else {
        FUZZ_CHECK(rc == 0 && strcmp(out, want) == 0, "param_window gave %d %s, want %s", rc, out,
                   want);
    }
}

static void check_requested_by(const unsigned char *v, size_t len)
{
    size_t rs, rn;
    ref_trim(v, len, &rs, &rn);
    bool want = ref_utf8_valid(v + rs, rn);
    size_t cps = 0;
    for (size_t i = 0; want && i < rn;) {
        uint32_t cp = 0;
        i += ref_utf8_width(v + rs + i, rn - i, &cp);
        cps++;
        if (cp <= 0x1F || (cp >= 0x7F && cp <= 0x9F))
            want = false;
    }
    want = want && cps >= 1 && cps <= 128;
    FUZZ_CHECK(text_requested_by_valid((const char *)v + rs, rn) == want,
               "text_requested_by_valid disagrees (want %d)", want);
}

static bool has_bearer(const unsigned char *p, size_t n)
{
    static const char b[] = "bearer ";
    if (n < 7)
        return false;
    for (size_t i = 0; i < 7; i++) {
        unsigned char c = p[i];
        if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != (unsigned char)b[i])
            return false;
    }
    return true;
}

static void check_auth(const unsigned char *k, size_t klen, bool khas, const unsigned char *a,
                       size_t alen, bool ahas)
{
    const char *out = NULL;
    size_t out_len = 0;
    int rc = http_auth_candidate(khas ? (const char *)k : NULL, klen, ahas ? (const char *)a : NULL,
                                 alen, &out, &out_len);
    size_t s = 0, n = 0;
    const unsigned char *src = NULL;
    if (khas) {
        ref_trim(k, klen, &s, &n);
        src = k;
    }
    if (n == 0 && ahas) {
        ref_trim(a, alen, &s, &n);
        src = a;
    }
    const unsigned char *c = n ? src + s : NULL;
    if (n > 0 && has_bearer(c, n)) {
        size_t s2, n2;
        ref_trim(c + 7, n - 7, &s2, &n2);
        c += 7 + s2;
        n = n2;
    }
    if (n == 0) {
        FUZZ_CHECK(rc == -1, "http_auth_candidate accepted a blank candidate");
        return;
    }
    FUZZ_CHECK(rc == 0 && out == (const char *)c && out_len == n,
               "http_auth_candidate rc %d len %zu, reference len %zu", rc, out_len, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    /* Exact-size buffers so ASan catches any write past the qs_len bytes query_parse may use. */
    unsigned char *buf = malloc(size ? size : 1);
    unsigned char *ref = malloc(size + 1);
    unsigned char *scratch = malloc(size + 1);
    unsigned char *kv = malloc(size + 1), *av = malloc(size + 1);
    size_t klen = 0, alen = 0;
    bool khas = false, ahas = false;
    /* query_parse, with exact-size arrays as well, must answer what the reference answers. */
    size_t bound = query_piece_bound((const char *)data, size);
    query_param *parsed = malloc(bound * sizeof(*parsed));
    char *parsed_buf = malloc(size ? size : 1);
    size_t nparsed = query_parse((const char *)data, size, parsed, parsed_buf);
    FUZZ_CHECK(nparsed <= bound, "query_parse stored %zu pieces, bound %zu", nparsed, bound);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t got_len = 0, ref_len = 0;
        const query_param *q = query_find(parsed, nparsed, names[i]);
        int got = q != NULL;
        int want = ref_query_get(data, size, names[i], ref, &ref_len, scratch);
        FUZZ_CHECK(got == want, "query_find(%s) found %d, reference %d", names[i], got, want);
        if (got) {
            got_len = q->value_len;
            memcpy(buf, q->value, got_len);
            FUZZ_CHECK(got_len <= size, "decoded length %zu > raw length %zu", got_len, size);
            FUZZ_CHECK(got_len == ref_len && memcmp(buf, ref, got_len) == 0,
                       "query_find(%s) value differs from the reference", names[i]);
            check_trim(buf, got_len);
            check_requested_by(buf, got_len);
        }
        check_int(buf, got ? got_len : 0, got);
        check_window(buf, got ? got_len : 0, got);
        if (got && strcmp(names[i], "k") == 0) {
            memcpy(kv, buf, got_len);
            klen = got_len, khas = true;
        }
        if (got && strcmp(names[i], "a") == 0) {
            memcpy(av, buf, got_len);
            alen = got_len, ahas = true;
        }
    }
    check_auth(kv, klen, khas, av, alen, ahas);
    free(parsed);
    free(parsed_buf);
    /* The raw input itself as a header-like value. */
    check_trim(data, size);
    free(buf);
    free(ref);
    free(scratch);
    free(kv);
    free(av);
    return 0;
}
